#!/usr/bin/env bash
# Run 75: float32 parity, then two rounds of PreLn and Both at both shapes on the final build.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-fp32.txt | sort | uniq -c
echo "rounds with $((300 - SECONDS)) s left"
ROUNDS=2 timeout $((300 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab pre-ln-256x128,both-256x128,pre-ln-32x512,both-32x512 $B/grid > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
runs = {}
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        runs.setdefault(r['configuration'], []).append(r)
        up = r.get('median_uploads_host_seconds')
        print(r['configuration'], 'mean %.2f ms' % (1e3 * r['mean_step_seconds']), 'prepare %.3f ms' % (1e3 * r['median_prepare_host_seconds']), 'uploads', 'n/a' if up is None else '%.3f ms' % (1e3 * up))
for shape in ('256x128', '32x512'):
    for i, (base, both) in enumerate(zip(runs.get('PreLn' + shape, []), runs.get('Both' + shape, []))):
        speedup = base['mean_step_seconds'] / both['mean_step_seconds']
        ratio = base['flops_per_step'] / both['flops_per_step']
        print(f"round {i + 1} {shape}: speedup {speedup:.3f}, FLOP ratio {ratio:.3f}, share {100 * speedup / ratio:.1f} %")
PY
