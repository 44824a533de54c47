#!/usr/bin/env bash
# Run 72: parity of the inputs kept on the device (float32 and bf16), and one A/B round against
# run 71's build at six configurations.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation\|importance\|pretrained_model" $OUT/check-fp32.txt | sort | uniq -c
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation" $OUT/check-bf16.txt | sort | uniq -c
echo "A/B with $((585 - SECONDS)) s left"
ROUNDS=1 timeout $((585 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab base-256x128,pre-ln-256x128,both-256x128,token-drop-256x128,pre-ln-32x512,both-32x512 $B/grid $B/grid-71 > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
rows = {}
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        rows[(r['configuration'], r['binary'])] = r
        up = r.get('median_uploads_host_seconds')
        print(r['configuration'], r['binary'], 'prepare %.3f ms' % (1e3 * r['median_prepare_host_seconds']), 'uploads', 'n/a' if up is None else '%.3f ms' % (1e3 * up))
for binary in ('grid', 'grid-71'):
    for shape in ('256x128', '32x512'):
        base, both = rows.get(('PreLn' + shape, binary)), rows.get(('Both' + shape, binary))
        if base and both:
            speedup = base['mean_step_seconds'] / both['mean_step_seconds']
            ratio = base['flops_per_step'] / both['flops_per_step']
            print(f"{binary} {shape}: speedup {speedup:.3f}, FLOP ratio {ratio:.3f}, share {100 * speedup / ratio:.1f} %")
PY
