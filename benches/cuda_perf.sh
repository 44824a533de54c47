#!/usr/bin/env bash
# The GPU benchmark table of docs/perf.md in one call on a GPU machine: `bench` of each BERT-base
# configuration of examples/bert_base_grid.rs (MATMULS, default "tf32 bf16"), then Hugging Face
# BertForMaskedLM in PyTorch on the same shapes (benches/torch_reference.py, TORCH_MODES, default
# fp32,tf32,bf16,bf16-compile; empty skips PyTorch), then the table (benches/perf_table.py).
# Usage: benches/cuda_perf.sh GRID_BINARY OUT_DIR [STEPS] [CONFIGURATION...]
# Twenty dropbert runs and PyTorch's take more than the device tool's 10 minutes a command:
# run 11 passed MATMULS=bf16 for the table and tf32 for the baseline alone.
# Layer dropping is measured at step 100000, where its keep probability has reached theta_bar.
set -uo pipefail
binary=${1:?bert_base_grid binary}; out=${2:?out dir}; steps=${3:-5}; shift 3 || shift $#
configurations=("$@")
[ ${#configurations[@]} -eq 0 ] && configurations=(base-256x128 token-drop-256x128 pre-ln-256x128
    layer-drop-256x128 both-256x128 base-32x512 token-drop-32x512 pre-ln-32x512 layer-drop-32x512
    both-32x512)
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
for configuration in "${configurations[@]}"; do
    for matmul in ${MATMULS:-tf32 bf16}; do
        echo "== $configuration $matmul" | tee -a "$out/log.txt"
        timeout 300 "$binary" "$configuration" bench --backend cuda --warmup 2 --steps "$steps" \
            --at-step 100000 --matmul "$matmul" --json >>"$out/bench.jsonl" 2>>"$out/log.txt"
        rc=$?
        [ $rc -ne 0 ] && echo "{\"configuration_arg\": \"$configuration\", \"matmul\": \"$matmul\", \"failed\": $rc}" >>"$out/bench.jsonl"

        tail -n 1 "$out/bench.jsonl"
    done
done
# TORCH_MODES= (empty) skips PyTorch.
for shape in "256 128" "32 512"; do
    [ -z "${TORCH_MODES-x}" ] && break
    set -- $shape
    echo "== torch $1 x $2" | tee -a "$out/log.txt"
    timeout 400 python3 "$here/torch_reference.py" --batch "$1" --seq "$2" --steps "$steps" \
        --modes "${TORCH_MODES:-fp32,tf32,bf16,bf16-compile}" >>"$out/torch.jsonl" 2>>"$out/log.txt"
done
python3 "$here/perf_table.py" "$out/bench.jsonl" "$out/torch.jsonl" | tee "$out/table.md"
