#!/usr/bin/env bash
# One run of both CPU training-step benchmarks on this machine: dropbert (criterion) and PyTorch.
# Usage: benches/compare_cpu.sh [python with torch and transformers]   (default: python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-python3}
cargo bench --bench train_step -- --noplot
"$python" benches/torch_cpu_step.py
