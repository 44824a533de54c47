#!/usr/bin/env bash
# Run 76: float32 parity, then one A/B round of PreLn and Both at both shapes: the new build
# (steps queued ahead), the same build one step at a time, and run 74's build.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-fp32.txt | sort | uniq -c
echo "rounds with $((560 - SECONDS)) s left"
ROUNDS=1 timeout $((560 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab pre-ln-32x512,both-32x512,pre-ln-256x128,both-256x128 $B/grid $B/grid-serial $B/grid-75 > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
runs = {}
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        runs[(r['configuration'], r['binary'])] = r
        up = r.get('median_uploads_host_seconds')
        print(r['configuration'], r['binary'], 'mean %.2f median %.2f ms' % (1e3 * r['mean_step_seconds'], 1e3 * r['median_step_seconds']), 'execute host %.2f ms' % (1e3 * r['median_execute_host_seconds']), 'prepare %.3f ms' % (1e3 * r['median_prepare_host_seconds']), 'uploads', 'n/a' if up is None else '%.3f ms' % (1e3 * up))
for shape in ('256x128', '32x512'):
    for binary in ('grid', 'grid-serial', 'grid-75'):
        base, both = runs.get(('PreLn' + shape, binary)), runs.get(('Both' + shape, binary))
        if base and both:
            speedup = base['mean_step_seconds'] / both['mean_step_seconds']
            ratio = base['flops_per_step'] / both['flops_per_step']
            print(f"{shape} {binary}: speedup {speedup:.3f}, FLOP ratio {ratio:.3f}, share {100 * speedup / ratio:.1f} %")
PY
