#!/usr/bin/env bash
# Run 35: parity of the final tree (bf16 and packed-mask buffers as one RawBuffer type; readers
# helper), float32 and bf16.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMUL=bf16 TOLERANCE=5e-2 timeout 70 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
timeout 70 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt
