#!/usr/bin/env bash
# Run 33: A/B of columns (run 30) and gates (a block's input gradient chosen by its gate); parity of
# gates; then the full table with PyTorch on gates.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
ROUNDS=2 timeout 200 bash benches/cuda_ab.sh /tmp/ab pre-ln-256x128,layer-drop-256x128,both-256x128,both-32x512 \
    $B/bert_base_grid.columns $B/bert_base_grid.gates > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30\|^30 " $OUT/check.txt $OUT/check-bf16.txt
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 270 bash benches/cuda_perf.sh $B/bert_base_grid.gates /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md $OUT/table.md
tar czf $OUT/all.tgz -C /tmp c cb ab p
tail -20 $OUT/table.md
