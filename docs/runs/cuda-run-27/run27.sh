#!/usr/bin/env bash
# Run 27: the full table with PyTorch on the final build (round).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/prof
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 450 bash benches/cuda_perf.sh $B/bert_base_grid.round /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md $OUT/table.md
tar czf $OUT/all.tgz -C /tmp prof p
tail -22 $OUT/table.md
