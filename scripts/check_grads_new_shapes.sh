#!/usr/bin/env bash
# grads against transformers on random checkpoints of shapes no fixture has: for each seed,
# make a checkpoint and its reference (scripts/grads_new_shapes.py), build a dropbert binary for
# its shape with `cargo xtask build-model`, run `grads`, compare.
# Usage: scripts/check_grads_new_shapes.sh /path/to/python-with-torch-and-transformers [seeds...]
set -euo pipefail
python=${1:?usage: $0 PYTHON [SEEDS...]}
shift
seeds=${*:-"1 2 3"}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/target/grads-new-shapes
status=0
for seed in $seeds; do
    dir=$work/seed-$seed
    rm -rf "$dir"
    shape=$("$python" "$root/scripts/grads_new_shapes.py" make --seed "$seed" --out "$dir")
    seq=$("$python" -c "import json,sys; print(json.loads(sys.argv[1])['seq_len'])" "$shape")
    batch=$("$python" -c "import json,sys; print(json.loads(sys.argv[1])['batch'])" "$shape")
    binary=$(cd "$root" && cargo xtask build-model --from-hf-config "$dir/checkpoint/config.json" \
        --seq "$seq" --batch "$batch" --name "grads-shape-$seed" | tail -n 1)
    "$binary" grads --checkpoint "$dir/checkpoint" --batch "$dir/batch.safetensors" \
        --out "$dir/actual.safetensors"
    "$python" "$root/scripts/grads_new_shapes.py" compare --dir "$dir" \
        --actual "$dir/actual.safetensors" || status=1
done
exit $status
