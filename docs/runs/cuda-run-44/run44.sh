#!/usr/bin/env bash
# Run 44: attention's probabilities four rows a warp (attn4) against lnsum: parity of attn4,
# the A/B, a profile of attn4.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 250 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512,both-256x128 \
    $B/lnsum $B/attn4 > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=70 timeout 50 $B/attn4 base-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > $OUT/base-256x128.txt 2>&1
