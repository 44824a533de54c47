#!/usr/bin/env bash
# Run 25: the full table with PyTorch on the final build (gemmr), and a Pre-LN profile.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/prof
DROPBERT_PROFILE=1 timeout 60 $B/bert_base_grid.gemmr pre-ln-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > /tmp/prof/pre-ln-256x128.txt 2>&1
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 450 bash benches/cuda_perf.sh $B/bert_base_grid.gemmr /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md $OUT/table.md
tar czf $OUT/all.tgz -C /tmp prof p
tail -22 $OUT/table.md
