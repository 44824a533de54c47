#!/usr/bin/env bash
# Run 45: the table with PyTorch on the final build (attn4; its parity ran in run 44).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
cp $B/attn4 $B/bert_base_grid
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 330 bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md
