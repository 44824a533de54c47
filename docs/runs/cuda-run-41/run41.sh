#!/usr/bin/env bash
# Run 41: logits padded to the logit width (vpad) against the build before (old): parity of vpad
# (with the vocab-500 case), the A/B, and profiles of vpad.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 300 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512,both-256x128 \
    $B/old $B/vpad > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
mkdir -p /tmp/prof
for c in base-256x128 both-256x128; do
    DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=70 timeout 60 $B/vpad $c bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/$c.txt 2>&1
done
cp /tmp/prof/*.txt $OUT/
tar czf $OUT/all.tgz -C /tmp c cb ab
