#!/usr/bin/env bash
# Run 70: float32 and bf16 parity of the loss-rows build (importance table on the device, the
# decoder's bias inside the loss kernels, float4 AdamW and sum of squares), a Both256x128
# profile, and one A/B round of PreLn and Both at both shapes against main's build (b5ee416).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation" $OUT/check-fp32.txt | sort | uniq -c
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation" $OUT/check-bf16.txt | sort | uniq -c
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout 90 $B/grid both-256x128 bench --backend cuda --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > $OUT/profile-both-256x128.txt 2>&1
grep -h "LogitRows\|5120, 30528\|in all ops\|AdamW\|SumOfSquares" $OUT/profile-both-256x128.txt | cut -c1-120 | head -16
echo "A/B with $((580 - SECONDS)) s left"
ROUNDS=1 timeout $((580 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab pre-ln-256x128,both-256x128,pre-ln-32x512,both-32x512 $B/grid $B/grid-main > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 - $OUT/ab/ab.jsonl <<'PY'
import json, sys
rows = {}
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        rows[(r['configuration'], r['binary'])] = r
for binary in ('grid', 'grid-main'):
    for shape in ('256x128', '32x512'):
        base, both = rows.get(('PreLn' + shape, binary)), rows.get(('Both' + shape, binary))
        if base and both:
            speedup = base['mean_step_seconds'] / both['mean_step_seconds']
            ratio = base['flops_per_step'] / both['flops_per_step']
            print(f"{binary} {shape}: speedup {speedup:.3f}, FLOP ratio {ratio:.3f}, share {100 * speedup / ratio:.1f} %")
PY
