#!/usr/bin/env bash
# Run 49: the table with PyTorch in one call on build "rows" (its parity and A/B ran in run 48),
# then BERT-base's gradients against the CPU's again: run 48's comparison measured the key
# biases' gradients (zero but for rounding, norm 5e-10) against their own norm; the comparison
# now takes compare_tensor_files.py's floor.
set -u
B=.cuda-run
R=docs/runs/cuda-run-48
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 470 bash benches/cuda_perf.sh $B/bert_base_grid /tmp/p 10 > $OUT/perf.log 2>&1
cp /tmp/p/table.md /tmp/p/bench.jsonl /tmp/p/torch.jsonl $OUT/ 2>/dev/null
cat $OUT/table.md
timeout 40 $B/multi_config bert-base pretrain --steps 0 --eval-every 0 --vocab tests/fixtures/vocab/bert-base-uncased.txt \
    --out /tmp/bb0 --quiet > /dev/null 2>&1; md5sum /tmp/bb0/final/model.safetensors
timeout 30 $B/multi_config bert-base grads --checkpoint /tmp/bb0/final --batch $R/bert_base_batch.safetensors \
    --out /tmp/bb.safetensors 2>&1 | tail -1
python3 scripts/tensor_fingerprints.py make /tmp/bb.safetensors /tmp/bb.json && \
    python3 scripts/tensor_fingerprints.py compare /tmp/bb.json $R/bert_base_grads_cpu.json --tolerance 1e-4 > $OUT/bert-base-grads.txt
tail -5 $OUT/bert-base-grads.txt
