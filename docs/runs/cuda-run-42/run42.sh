#!/usr/bin/env bash
# Run 42: the cross-entropy gradient stored in bf16 (ceg), then also the logits (logits16),
# against run 41's build (vpad): parity of logits16 (multi_config has both changes), the A/B,
# a profile of logits16.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 280 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512 \
    $B/vpad $B/ceg $B/logits16 > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=70 timeout 60 $B/logits16 base-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > $OUT/base-256x128.txt 2>&1
tar czf $OUT/all.tgz -C /tmp c cb ab
