#!/usr/bin/env bash
# Run 58: the table on the session's final build (build warps, commit 7f96694), a second sample
# of run 53's (the same kernels, bit for bit the same results) with the session's last device time.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 320 bash benches/cuda_perf.sh $B/warps /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md 2>/dev/null || tail -3 $OUT/perf.log
