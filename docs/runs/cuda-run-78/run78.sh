#!/usr/bin/env bash
# Run 78: a profile of Base32x512 on run 76's build (one profiled step after two, at step
# 100000), for the line on what limits the baseline against torch.compile at 32 x 512.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=45 timeout 200 $B/grid base-32x512 bench --backend cuda --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > $OUT/bench.txt 2> $OUT/profile-base-32x512-all.txt
echo "rc=$?"
# The last report is the profiled step's.
n=$(grep -n "in all ops" $OUT/profile-base-32x512-all.txt | tail -1 | cut -d: -f1)
sed -n "${n},\$p" $OUT/profile-base-32x512-all.txt > $OUT/profile-base-32x512.txt
rm $OUT/profile-base-32x512-all.txt
head -50 $OUT/profile-base-32x512.txt
