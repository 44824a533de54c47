#!/usr/bin/env bash
# Run 68: bf16 parity of the gate schedule's flat reader counts (grid), one A/B round against
# run 67's build (prev).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
echo "A/B with $((420 - SECONDS)) s left"
ROUNDS=1 timeout $((420 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab both-256x128,both-32x512 $B/grid $B/prev > /dev/null 2>&1
cat $OUT/ab/ab.txt
