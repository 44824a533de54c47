#!/usr/bin/env bash
# Run 46: parity of the review-mended build (880481d, whose column-dots host code had not run on
# a GPU), and profiles of the Pre-LN baseline and the three drop methods at 256 x 128, to place
# where both-together loses against its FLOP ratio.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
mkdir -p $OUT/profiles
for c in pre-ln-256x128 both-256x128 layer-drop-256x128 token-drop-256x128; do
  DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=400 timeout 60 $B/b880 $c bench --backend cuda --warmup 1 --steps 3 --at-step 100000 --matmul bf16 > $OUT/profiles/$c.txt 2>&1
  tail -1 $OUT/profiles/$c.txt
done
for c in pre-ln-256x128 both-256x128; do
  timeout 60 $B/b880 $c bench --backend cuda --warmup 2 --steps 10 --at-step 100000 --matmul bf16 2>&1 | tail -1
done
