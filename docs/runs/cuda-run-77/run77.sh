#!/usr/bin/env bash
# Run 77: the table on run 76's build (steps queued ahead; PyTorch timed the same way), then
# PyTorch bf16 eager one step at a time at both shapes.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout 500 bash benches/cuda_perf.sh $B/grid $OUT/table 10 > /tmp/perf.log 2>&1
echo "table rc=$?"; rm -f $OUT/table/log.txt; cat $OUT/table/table.md
echo "PyTorch one at a time with $((590 - SECONDS)) s left"
for shape in "256 128" "32 512"; do
    set -- $shape
    timeout $((585 - SECONDS)) python3 benches/torch_reference.py --batch $1 --seq $2 --steps 10 --modes bf16 --one-at-a-time >> $OUT/torch-one-at-a-time.jsonl 2>/dev/null
done
python3 - $OUT/torch-one-at-a-time.jsonl $OUT/table/torch.jsonl <<'PY'
import json, sys
for path in sys.argv[1:]:
    for r in map(json.loads, open(path)):
        print(path.split('/')[-1], r.get('mode'), r.get('batch'), r.get('seq'), 'queued ahead' if r.get('queued_ahead') else 'one at a time', '%.2f ms' % (1e3 * r['median_step_seconds']) if 'median_step_seconds' in r else r)
PY
