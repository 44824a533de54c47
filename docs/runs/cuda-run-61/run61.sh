#!/usr/bin/env bash
# Run 61: fused attention v3 (each kernel's copies in two groups: the probabilities computed
# while the values, and backward the context gradient, arrive) against v2: bf16 parity of v3,
# the A/B, then the table (dropbert bf16 and PyTorch bf16, eager and compiled) on the faster.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 190 bash benches/cuda_ab.sh /tmp/ab base-256x128,token-drop-256x128 $B/v2 $B/v3 > /tmp/ab.log 2>&1
cp /tmp/ab/ab.txt $OUT/ab.txt; cp /tmp/ab/ab.jsonl $OUT/ab.jsonl; cat $OUT/ab.txt
faster=$(python3 - /tmp/ab/ab.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if 'mean_step_seconds' in l]
total = {}
for r in rows:
    total[r['binary']] = total.get(r['binary'], 0) + r['mean_step_seconds']
print(min(total, key=total.get) if len(total) == 2 else 'v3')
PY
)
echo "table on $faster ($((600 - SECONDS)) s left)"
MATMULS=bf16 TORCH_MODES=bf16,bf16-compile timeout $((590 - SECONDS)) bash benches/cuda_perf.sh $B/$faster /tmp/p 10 > /tmp/perf.log 2>&1
cp /tmp/p/table.md $OUT/table.md; cp /tmp/p/bench.jsonl $OUT/bench.jsonl; cp /tmp/p/torch.jsonl $OUT/torch.jsonl
cat $OUT/table.md
