#!/usr/bin/env bash
# Run 47: the importance update staged in shared memory and attention's probabilities at short
# rows (a row to a group of lanes), build "short" against b880 (commit 880481d): parity (now with
# token dropping's importance table and weights after 4 pretraining steps), the A/B, and two
# probes of where the Both step's time goes: the same 3 steps as run 46's profile without the
# profiler, and BERT-base at 32 x 128 (an eighth of the work, the same ops) for the host's time
# to queue a step.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 300 bash benches/cuda_ab.sh /tmp/ab token-drop-256x128,both-256x128,base-256x128 \
    $B/b880 $B/short > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
timeout 60 $B/short both-256x128 bench --backend cuda --warmup 1 --steps 3 --at-step 100000 --matmul bf16 2>&1 | tail -1
timeout 60 $B/multi_config bert-base bench --backend cuda --warmup 2 --steps 10 --matmul bf16 2>&1 | tail -1
