#!/usr/bin/env bash
# Run 80: after the review's mends (one StreamEvent type for every CUDA event), the float32
# parity check, one bench of Base32x512 and Both32x512 (device marks, page-locked transfers),
# and one profiled step (the profiler's op timeline).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-fp32.txt | sort | uniq -c
for c in base-32x512 both-32x512; do
    timeout 120 $B/grid $c bench --backend cuda --warmup 2 --steps 10 --at-step 100000 --matmul bf16 2>/dev/null
done
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=8 timeout 120 $B/grid base-32x512 bench --backend cuda --warmup 1 --steps 1 --at-step 100000 --matmul bf16 2>$OUT/profile.txt >/dev/null; echo "profile rc=$?"
n=$(grep -n "in all ops" $OUT/profile.txt | tail -1 | cut -d: -f1); sed -n "${n},$((n+9))p" $OUT/profile.txt
