#!/usr/bin/env bash
# Run 48: build "rows" (LayerNorm's rows in registers, bias gradients four columns a lane, the
# embeddings' scatter by runs and gather by fours, with run 47's changes) against b880: parity,
# BERT-base's gradients at its real widths against the CPU's (by fingerprints), the A/B, and a
# profile of rows at 256 x 128.
set -u
B=.cuda-run
R=docs/runs/cuda-run-48
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c > $OUT/check.txt 2>&1; echo "fp32 check rc=$?"
MATMUL=bf16 TOLERANCE=5e-2 timeout 90 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check.txt $OUT/check-bf16.txt | sort | uniq -c
# The CPU made its checkpoint with the same command (seed 0) and md5 88e2d5676549faf5a2d57796ae75cd5a.
timeout 90 $B/multi_config bert-base pretrain --steps 0 --eval-every 0 --vocab tests/fixtures/vocab/bert-base-uncased.txt \
    --out /tmp/bb0 --quiet > /dev/null 2>&1; md5sum /tmp/bb0/final/model.safetensors
timeout 60 $B/multi_config bert-base grads --checkpoint /tmp/bb0/final --batch $R/bert_base_batch.safetensors \
    --out /tmp/bb.safetensors 2>&1 | tail -1
python3 scripts/tensor_fingerprints.py make /tmp/bb.safetensors /tmp/bb.json && \
    python3 scripts/tensor_fingerprints.py compare /tmp/bb.json $R/bert_base_grads_cpu.json --tolerance 1e-4 | tail -3
ROUNDS=2 timeout 270 bash benches/cuda_ab.sh /tmp/ab base-256x128,both-256x128,base-32x512 \
    $B/b880 $B/rows > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat $OUT/ab.txt
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=400 timeout 50 $B/rows base-256x128 bench --backend cuda --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > $OUT/base-256x128.txt 2>&1
