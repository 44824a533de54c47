#!/usr/bin/env bash
# Run 62: the backward kernel reads the forward kernel's mask bits (build keep) against v3:
# bf16 parity of keep, a one-round A/B, then the table (dropbert bf16 and PyTorch bf16, eager
# and compiled) on the faster build.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMUL=bf16 TOLERANCE=5e-2 timeout 100 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; rc=$?; echo "bf16 check rc=$rc"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=1 timeout 130 bash benches/cuda_ab.sh /tmp/ab base-256x128,token-drop-256x128 $B/v3 $B/keep > /tmp/ab.log 2>&1
cp /tmp/ab/ab.jsonl $OUT/ab.jsonl
faster=$(python3 - /tmp/ab/ab.jsonl $rc <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if 'mean_step_seconds' in l]
for r in rows:
    print(r['configuration'], r['binary'], round(r['mean_step_seconds'] * 1000, 2), file=sys.stderr)
means = {}
for r in rows:
    means.setdefault(r['binary'], {})[r['configuration']] = r['mean_step_seconds']
both = [c for c in means.get('v3', {}) if c in means.get('keep', {})]
keep_wins = sys.argv[2] == '0' and both and sum(means['keep'][c] for c in both) < sum(means['v3'][c] for c in both)
print('keep' if keep_wins else 'v3')
PY
)
echo "table on $faster ($((600 - SECONDS)) s left)"
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout $((595 - SECONDS)) bash benches/cuda_perf.sh $B/$faster $OUT/table 8 > /tmp/perf.log 2>&1
rm -f $OUT/table/log.txt; cat $OUT/table/table.md
