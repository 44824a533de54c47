#!/usr/bin/env bash
# Run 73: float32 parity of the page-locked uploads, one A/B round against run 72's build.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation\|importance\|pretrained_model" $OUT/check-fp32.txt | sort | uniq -c
echo "A/B with $((400 - SECONDS)) s left"
ROUNDS=1 timeout $((400 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab base-256x128,both-256x128,pre-ln-32x512,both-32x512 $B/grid $B/grid-72 > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        up = r.get('median_uploads_host_seconds')
        print(r['configuration'], r['binary'], 'prepare %.3f ms' % (1e3 * r['median_prepare_host_seconds']), 'uploads', 'n/a' if up is None else '%.3f ms' % (1e3 * up))
PY
