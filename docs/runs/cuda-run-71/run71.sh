#!/usr/bin/env bash
# Run 71: float32 parity of the warp-per-slot importance update, and one A/B round of the
# token-dropping configurations against run 70's build; bench's new upload-walk time.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/c32 > $OUT/check-fp32.txt 2>&1; echo "fp32 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation\|importance" $OUT/check-fp32.txt | sort | uniq -c
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=90 timeout 90 $B/grid both-256x128 bench --backend cuda --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > $OUT/profile-both-256x128.txt 2>&1
grep -h "ImportanceUpdate" $OUT/profile-both-256x128.txt | tail -1
echo "A/B with $((560 - SECONDS)) s left"
ROUNDS=1 timeout $((560 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab token-drop-256x128,both-256x128,both-32x512 $B/grid $B/grid-70 > /dev/null 2>&1
cat $OUT/ab/ab.txt
ROUNDS=1 timeout $((580 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab-base base-256x128,pre-ln-32x512 $B/grid > /dev/null 2>&1
for f in $OUT/ab/ab.jsonl $OUT/ab-base/ab.jsonl; do
    python3 -c "
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    if 'mean_step_seconds' in r:
        up = r.get('median_uploads_host_seconds')
        print(r['configuration'], r['binary'], 'mean %.2f ms' % (1e3 * r['mean_step_seconds']), 'prepare %.3f ms' % (1e3 * r['median_prepare_host_seconds']), 'uploads', 'n/a' if up is None else '%.3f ms' % (1e3 * up))
" $f
done
