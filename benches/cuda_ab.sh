#!/usr/bin/env bash
# On a GPU machine: builds of bert_base_grid against each other in one call, so that a change is
# measured against the build before it on the same card at the same time (docs/perf.md, runs
# 21-26). Each configuration runs every build in turn, ROUNDS times (default 2), `bench` at
# --matmul MATMUL (default bf16), 10 steps after 2 warm-up steps, at step 100000; then a table of
# the mean step times and peak memory of each build.
# Usage: benches/cuda_ab.sh OUT_DIR CONFIGURATIONS BINARY...
#   CONFIGURATIONS: comma-separated, e.g. base-256x128,base-32x512
#   BINARY: stripped bert_base_grid builds; each is named in the table by its file name.
set -uo pipefail
out=${1:?out dir}; configurations=${2:?configurations}; shift 2
[ $# -ge 1 ] || { echo "name at least one bert_base_grid binary" >&2; exit 2; }
rounds=${ROUNDS:-2}; matmul=${MATMUL:-bf16}
mkdir -p "$out"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt"
for configuration in ${configurations//,/ }; do
    for round in $(seq "$rounds"); do
        for binary in "$@"; do
            name=$(basename "$binary")
            echo "== $configuration $name round $round" >>"$out/ab.log"
            if timeout 180 "$binary" "$configuration" bench --backend cuda --warmup 2 --steps 10 \
                --at-step 100000 --matmul "$matmul" --json >"$out/one.json" 2>>"$out/ab.log"; then
                python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['binary']=sys.argv[2]; print(json.dumps(r))" \
                    "$out/one.json" "$name" >>"$out/ab.jsonl"
            else
                echo "{\"configuration_arg\": \"$configuration\", \"binary\": \"$name\", \"failed\": true}" >>"$out/ab.jsonl"
            fi
        done
    done
done
rm -f "$out/one.json"
python3 - "$out/ab.jsonl" "$@" <<'PY' | tee "$out/ab.txt"
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
names = [os.path.basename(b) for b in sys.argv[2:]]
print('| configuration | build | mean step of each round (ms) | peak GPU memory (GiB) |')
print('|---|---|---|---|')
for configuration in dict.fromkeys(r['configuration'] for r in rows if 'configuration' in r):
    for name in names:
        runs = [r for r in rows if r.get('configuration') == configuration and r['binary'] == name]
        steps = ', '.join('%.2f' % (r['mean_step_seconds'] * 1e3) for r in runs)
        peak = max((r['peak_gpu_memory_bytes'] / 2**30 for r in runs), default=float('nan'))
        print(f'| {configuration} | {name} | {steps} | {peak:.1f} |')
failed = [r for r in rows if r.get('failed')]
if failed:
    print('failed:', ', '.join(f"{r['configuration_arg']} {r['binary']}" for r in failed))
PY
