#!/usr/bin/env bash
# On a GPU machine: dropbert's CUDA backend against CPU outputs made beforehand (grads on every
# fixture of tests/integration/grads_parity.rs and tests/integration/drop_parity.rs, hidden on tests/fixtures/hf/
# tiny_post_ln), a short pretrain of the WordNet model and
# one of token dropping (its importance table and weights), and optionally a BERT-base speed run
# against PyTorch. Prints a table at the end.
# Usage: scripts/cuda_check.sh BINARY CPU_OUTPUTS_DIR OUT_DIR [--speed]
# BINARY is examples/multi_config built with --features cuda; CPU_OUTPUTS_DIR holds the same
# script's outputs on the CPU, made beforehand with `BACKEND=cpu scripts/cuda_check.sh BINARY - DIR`
# (a CUDA build runs on a machine without a GPU with the driver stub of `cargo xtask cuda-sdk` on
# LD_LIBRARY_PATH). MATMUL=tf32|bf16 runs grads, hidden and pretrain with that --matmul, and
# TOLERANCE (default 1e-4) is the relative error the comparisons with the (float32) CPU allow.
# BERT_BASE_REFERENCE=DIR (made by scripts/bert_base_reference.sh) adds BERT-base's gradients at
# 32 x 128 in float32 against the CPU's, through fingerprints (scripts/tensor_fingerprints.py).
# Exits 0 when every check ran and every comparison matched.
set -uo pipefail
binary=${1:?binary}; cpu=${2:?cpu outputs}; out=${3:?out dir}; speed=${4:-}
backend=${BACKEND:-cuda}
matmul=${MATMUL:-fp32}; tolerance=${TOLERANCE:-1e-4}
fixtures=tests/fixtures
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
if [ "$backend" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
else
    uname -a >"$out/card.txt"
fi
summary=()
failures=0
outcome() { # name, what happened, "failed" to count a failure
    summary+=("$(printf '%-28s %s' "$1" "$2")")
    echo "${summary[-1]}" >>"$out/summary.txt"
    if [ "${3:-}" = failed ]; then failures=$((failures + 1)); fi
}
check() { # name, command...
    local name=$1; shift
    local start=$(date +%s%N) status failed=
    if "$@" >>"$out/log.txt" 2>&1; then status=ran; else status="FAILED($?)"; failed=failed; fi
    local ms=$(( ($(date +%s%N) - start) / 1000000 ))
    outcome "$name" "$(printf '%-12s %6d ms' "$status" "$ms")" $failed
}
compare() { # name, actual, reference
    [ "$cpu" = - ] && return
    if python3 "$here/compare_tensor_files.py" "$2" "$3" --tolerance "$tolerance" >>"$out/compare.txt" 2>&1; then
        outcome "$1" "matches CPU within $tolerance"
    else
        outcome "$1" "DIFFERS (compare.txt)" failed
    fi
}
for case in "tiny-post-ln grads/tiny_post_ln" "narrow-3layer grads/narrow_3layer" "vocab-500 grads/vocab_500" \
    "token-drop-post-ln drops/token_drop_post_ln" "token-drop-last-split drops/token_drop_last_split" \
    "layer-drop-pre-ln drops/layer_drop_pre_ln" "both-pre-ln drops/both_pre_ln" \
    "both-pre-ln drops/both_split_gated_off"; do
    set -- $case
    name=$(basename "$2")
    echo "== grads $name" >>"$out/log.txt"
    check "grads $name" timeout 90 "$binary" "$1" grads --checkpoint "$fixtures/$2/checkpoint" \
        --batch "$fixtures/$2/batch.safetensors" --out "$out/$name.safetensors" --backend "$backend" --matmul "$matmul"
    [ -f "$out/$name.safetensors" ] && compare "  vs cpu" "$out/$name.safetensors" "$cpu/$name.safetensors"
done
# Dropout on (the fixtures' rates are 0): the masks drawn in and for the fused kernels, against
# the CPU's, in a copy of tiny_post_ln's checkpoint with both rates at 0.1.
dropout_checkpoint="$out/tiny_post_ln_dropout"
mkdir -p "$dropout_checkpoint"
cp "$fixtures/grads/tiny_post_ln/checkpoint/"* "$dropout_checkpoint/"
sed -i -e 's/"attention_probs_dropout_prob": 0.0/"attention_probs_dropout_prob": 0.1/' \
    -e 's/"hidden_dropout_prob": 0.0/"hidden_dropout_prob": 0.1/' "$dropout_checkpoint/config.json"
echo "== grads tiny_post_ln with dropout" >>"$out/log.txt"
check "grads tiny_post_ln dropout" timeout 90 "$binary" tiny-post-ln grads --checkpoint "$dropout_checkpoint" \
    --batch "$fixtures/grads/tiny_post_ln/batch.safetensors" --seed 7 --out "$out/tiny_post_ln_dropout.safetensors" \
    --backend "$backend" --matmul "$matmul"
[ -f "$out/tiny_post_ln_dropout.safetensors" ] && compare "  vs cpu" "$out/tiny_post_ln_dropout.safetensors" "$cpu/tiny_post_ln_dropout.safetensors"
rm -rf "$dropout_checkpoint"
echo "== hidden" >>"$out/log.txt"
check "hidden tiny_post_ln" timeout 120 "$binary" tiny-post-ln hidden --checkpoint "$fixtures/hf/tiny_post_ln" \
    --input "$fixtures/hf/tiny_post_ln/input.txt" --out "$out/hidden_tiny_post_ln.safetensors" --backend "$backend" --matmul "$matmul"
[ -f "$out/hidden_tiny_post_ln.safetensors" ] && compare "  vs cpu" "$out/hidden_tiny_post_ln.safetensors" "$cpu/hidden_tiny_post_ln.safetensors"
echo "== pretrain" >>"$out/log.txt"; rm -rf /tmp/pretrain-wordnet /tmp/pretrain-base
check "pretrain wordnet 30 steps" timeout 150 "$binary" bert-tiny-wordnet pretrain --steps 30 --eval-every 30 \
    --out /tmp/pretrain-wordnet --backend "$backend" --matmul "$matmul" --quiet
cp /tmp/pretrain-wordnet/metrics.jsonl "$out/pretrain-wordnet.metrics.jsonl" 2>/dev/null
# Token dropping's training state: the importance table (updated on the device by its own kernel)
# and the weights after 4 steps, against the CPU's.
rm -rf /tmp/pretrain-token-drop
check "pretrain token-drop 4 steps" timeout 150 "$binary" token-drop-post-ln pretrain --steps 4 --eval-every 0 \
    --save-every 4 --vocab "$fixtures/drops/token_drop_post_ln/checkpoint/vocab.txt" --out /tmp/pretrain-token-drop \
    --backend "$backend" --matmul "$matmul" --quiet
for state in token_importance model; do
    cp "/tmp/pretrain-token-drop/final/$state.safetensors" "$out/token_drop_pretrained_$state.safetensors" 2>/dev/null &&
        compare "  vs cpu" "$out/token_drop_pretrained_$state.safetensors" "$cpu/token_drop_pretrained_$state.safetensors"
done
if [ -n "${BERT_BASE_REFERENCE:-}" ]; then
    rm -rf /tmp/bert-base-checkpoint
    check "bert-base checkpoint" timeout 300 "$binary" bert-base pretrain --steps 0 --eval-every 0 \
        --vocab "$fixtures/vocab/bert-base-uncased.txt" --out /tmp/bert-base-checkpoint --backend "$backend" --quiet
    if [ "$(md5sum </tmp/bert-base-checkpoint/final/model.safetensors | cut -d' ' -f1)" = "$(cat "$BERT_BASE_REFERENCE/checkpoint.md5")" ]; then
        check "grads bert-base 32x128" timeout 300 "$binary" bert-base grads --checkpoint /tmp/bert-base-checkpoint/final \
            --batch "$BERT_BASE_REFERENCE/batch.safetensors" --out /tmp/bert-base-grads.safetensors --backend "$backend"
        python3 "$here/tensor_fingerprints.py" make /tmp/bert-base-grads.safetensors "$out/bert_base_grads.fingerprints.json"
        if python3 "$here/tensor_fingerprints.py" compare "$out/bert_base_grads.fingerprints.json" \
            "$BERT_BASE_REFERENCE/grads.fingerprints.json" --tolerance 1e-4 >>"$out/compare.txt" 2>&1; then
            outcome "  vs cpu (fingerprints)" "matches CPU within 1e-4"
        else
            outcome "  vs cpu (fingerprints)" "DIFFERS (compare.txt)" failed
        fi
        rm -f /tmp/bert-base-grads.safetensors
    else
        outcome "bert-base checkpoint" "DIFFERS from the reference's (md5)" failed
    fi
fi
if [ "$speed" = "--speed" ]; then
    echo "== bert-base" >>"$out/log.txt"
    check "pretrain bert-base 10 steps" timeout 240 "$binary" bert-base pretrain --steps 10 --eval-every 0 \
        --vocab "$fixtures/vocab/bert-base-uncased.txt" --out /tmp/pretrain-base --backend "$backend" --quiet
    cp /tmp/pretrain-base/metrics.jsonl "$out/pretrain-base.metrics.jsonl" 2>/dev/null
    for mode in fp32 tf32 bf16; do
        check "bench bert-base $mode" timeout 240 "$binary" bert-base bench --backend "$backend" --warmup 2 \
            --steps 10 --matmul "$mode"
    done
    grep "median step" "$out/log.txt" >"$out/bench.txt"
    python3 "$here/../benches/torch_reference.py" --batch 32 --seq 128 --modes fp32,tf32 >>"$out/torch.txt" 2>&1
fi
echo; cat "$out/card.txt"; printf '%s\n' "${summary[@]}"
echo "-- compare"; cat "$out/compare.txt" 2>/dev/null
for m in "$out"/pretrain-*.metrics.jsonl; do
    [ -f "$m" ] || continue
    name=$(basename "$m")
    echo "-- $name: step, loss (CPU loss where $cpu/$name exists), step seconds, tokens/s; validation"
    python3 -c "
import json,os,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
cpu={}
if os.path.exists(sys.argv[2]):
    cpu={(r['event'],r['step']):r['loss'] for r in map(json.loads,open(sys.argv[2]))}
for r in rows:
    ref=cpu.get((r['event'],r['step']))
    ref='' if ref is None else 'cpu %.4f' % ref
    if r['event']=='train' and (r['step']<=3 or r['step']%5==0): print(r['step'], round(r['loss'],4), ref, round(r['step_seconds'],4), round(r['tokens_per_second']))
    if r['event']=='validation': print('validation', r['step'], round(r['loss'],4), ref)" "$m" "$cpu/$name"
done
[ -f "$out/bench.txt" ] && cat "$out/bench.txt"
[ -f "$out/torch.txt" ] && cat "$out/torch.txt"
grep -m5 -i "panicked\|error" "$out/log.txt" || true
# The exit status: 0 when every check ran and every comparison matched, else 1.
[ "$failures" -eq 0 ]
