#!/usr/bin/env bash
# The CPU side of the BERT-base gradient check of scripts/cuda_check.sh (BERT_BASE_REFERENCE):
# a checkpoint drawn from seed 0, a random masked-LM batch of 32 x 128, the CPU's gradients on
# it (438 MB, too large to carry to a GPU machine) and their fingerprints
# (scripts/tensor_fingerprints.py), which travel instead. The GPU side draws the same checkpoint
# with the same command; its md5 is kept here to show that it did.
# Usage: scripts/bert_base_reference.sh BINARY OUT_DIR   (BINARY: examples/multi_config; about
# 4 minutes on 2 cores, most of it the validation pass of `pretrain --steps 0`)
set -euo pipefail
binary=${1:?multi_config binary}; out=${2:?out dir}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
rm -rf "$out/checkpoint-run"
"$binary" bert-base pretrain --steps 0 --eval-every 0 --vocab tests/fixtures/vocab/bert-base-uncased.txt \
    --out "$out/checkpoint-run" --backend cpu --quiet >/dev/null
md5sum <"$out/checkpoint-run/final/model.safetensors" | cut -d' ' -f1 >"$out/checkpoint.md5"
python3 "$here/make_random_mlm_batch.py" "$out/batch.safetensors" 32 128 29000 5
"$binary" bert-base grads --checkpoint "$out/checkpoint-run/final" --batch "$out/batch.safetensors" \
    --out "$out/grads.safetensors" --backend cpu
python3 "$here/tensor_fingerprints.py" make "$out/grads.safetensors" "$out/grads.fingerprints.json"
rm -rf "$out/checkpoint-run" "$out/grads.safetensors"
echo "reference in $out: batch.safetensors, grads.fingerprints.json, checkpoint.md5 ($(cat "$out/checkpoint.md5"))"
