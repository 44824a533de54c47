#!/usr/bin/env bash
# Run 31: the full table with PyTorch on the final build (columns, commit 6536fed).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/prof
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 560 bash benches/cuda_perf.sh $B/bert_base_grid.columns /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md $OUT/table.md
cp /tmp/p/*.jsonl $OUT/ 2>/dev/null
tar czf $OUT/all.tgz -C /tmp p
tail -22 $OUT/table.md
