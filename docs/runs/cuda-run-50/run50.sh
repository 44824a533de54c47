#!/usr/bin/env bash
# Run 50: dropout masks from 16 random bits a value (8 values a Philox counter) and the
# hardware's exp2 in attention's probabilities, build mask16 against rows: parity (CPU outputs
# remade with the new masks), the A/B at 32 x 512, BERT-base's gradients against the CPU's, then
# the table with PyTorch in whatever time the call has left.
set -u
B=.cuda-run
R=docs/runs/cuda-run-50
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 120 bash benches/cuda_ab.sh /tmp/ab base-32x512 $B/rows $B/mask16 > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
timeout 40 $B/multi_config bert-base pretrain --steps 0 --eval-every 0 --vocab tests/fixtures/vocab/bert-base-uncased.txt \
    --out /tmp/bb0 --quiet > /dev/null 2>&1; md5sum /tmp/bb0/final/model.safetensors
timeout 30 $B/multi_config bert-base grads --checkpoint /tmp/bb0/final --batch docs/runs/cuda-run-48/bert_base_batch.safetensors \
    --out /tmp/bb.safetensors 2>&1 | tail -1
python3 scripts/tensor_fingerprints.py make /tmp/bb.safetensors /tmp/bb.json && \
    python3 scripts/tensor_fingerprints.py compare /tmp/bb.json $R/bert_base_grads_cpu.json --tolerance 1e-4 > $OUT/bert-base-grads.txt
tail -3 $OUT/bert-base-grads.txt
left=$((585 - SECONDS)); echo "table: ${left} s left"
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout $left bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md 2>/dev/null || tail -3 $OUT/perf.log
