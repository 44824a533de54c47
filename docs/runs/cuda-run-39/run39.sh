#!/usr/bin/env bash
# Run 39: the final build (pointer-array attention products, four-load cross-entropy rows):
# parity, then the table with PyTorch in the same call.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
for f in check check-bf16; do echo "$f:"; grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/$f.txt | sort | uniq -c; done
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 330 bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
tar czf $OUT/all.tgz -C /tmp c cb
cat $OUT/table.md
