#!/usr/bin/env bash
# Run 57: one set of warp reductions (build warps): parity in float32 with the BERT-base check,
# in bf16, and a short A/B against build vec.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
BERT_BASE_REFERENCE=$B/bbref timeout 170 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|fingerprints\|bert-base" $OUT/check.txt | sort | uniq -c
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
left=$((480 - SECONDS)); echo "A/B: ${left} s left"
ROUNDS=1 timeout $left bash benches/cuda_ab.sh /tmp/ab base-256x128,both-256x128 $B/vec $B/warps > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat /tmp/ab/ab.txt
