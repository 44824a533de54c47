#!/usr/bin/env bash
# Run 69: PreLn and Both at both shapes on the final build, one round, for both together's share.
set -u
B=.cuda-run
ROUNDS=1 timeout 280 bash benches/cuda_ab.sh $OUT/ab pre-ln-256x128,both-256x128,pre-ln-32x512,both-32x512 $B/grid > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
rows = {r['configuration']: r for r in map(json.loads, open(sys.argv[1])) if 'mean_step_seconds' in r}
for shape in ('256x128', '32x512'):
    base, both = rows.get('PreLn' + shape), rows.get('Both' + shape)
    if base and both:
        speedup = base['mean_step_seconds'] / both['mean_step_seconds']
        ratio = base['flops_per_step'] / both['flops_per_step']
        print(f"{shape}: speedup {speedup:.3f}, FLOP ratio {ratio:.3f}, share {100 * speedup / ratio:.1f} %")
PY
