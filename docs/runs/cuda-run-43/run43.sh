#!/usr/bin/env bash
# Run 43: LayerNorm's bias gradient in its weight gradient's kernel (lnsum) against run 42's
# logits16: parity of lnsum and the A/B; then the table with PyTorch on lnsum.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 80 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 140 bash benches/cuda_ab.sh /tmp/ab base-256x128,base-32x512 \
    $B/logits16 $B/lnsum > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
if grep -q DIFF $OUT/check.txt $OUT/check-bf16.txt; then echo "parity failed: no table"; exit 1; fi
cp $B/lnsum $B/bert_base_grid
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 285 bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md
