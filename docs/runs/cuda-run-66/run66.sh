#!/usr/bin/env bash
# Run 66: the gate schedule's own interpreter (grid) against run 64's build (edges): bf16 parity,
# one step's profile of Both256x128, one A/B round at three layer-dropping configurations.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout 90 $B/grid both-256x128 bench --backend cuda \
    --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > /tmp/p.txt 2>&1; echo "profile rc=$?"
start=$(grep -n "in all ops on the device" /tmp/p.txt | tail -1 | cut -d: -f1)
tail -n +"$start" /tmp/p.txt | cut -c1-200 > $OUT/profile-both-256x128.txt
head -1 $OUT/profile-both-256x128.txt; grep "GateChoose\|GateMask\|WriteRows" $OUT/profile-both-256x128.txt | cut -c1-120
echo "A/B with $((590 - SECONDS)) s left"
ROUNDS=1 timeout $((590 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab both-256x128,layer-drop-256x128,both-32x512 $B/grid $B/edges > /dev/null 2>&1
cat $OUT/ab/ab.txt
