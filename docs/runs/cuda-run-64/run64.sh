#!/usr/bin/env bash
# Run 64: host transfers at the step's edges. bf16 parity, the A/B against the switch
# (DROPBERT_TRANSFERS_AT_EDGES=0) in one build, profiles of Both256x128 both ways.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
printf '#!/usr/bin/env bash\nDROPBERT_TRANSFERS_AT_EDGES=0 exec "$(dirname "$0")/grid" "$@"\n' > $B/midstep; chmod +x $B/midstep
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
for build in grid midstep; do
    DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=40 timeout 90 $B/$build both-256x128 bench --backend cuda \
        --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > /tmp/p.txt 2>&1; echo "profile $build rc=$?"
    start=$(grep -n "in all ops on the device" /tmp/p.txt | tail -1 | cut -d: -f1)
    tail -n +"$start" /tmp/p.txt | cut -c1-200 > $OUT/profile-both-256x128-$build.txt
    grep -A 30 "idle after:" $OUT/profile-both-256x128-$build.txt | head -30
done
echo "A/B with $((590 - SECONDS)) s left"
ROUNDS=1 timeout $((590 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab both-256x128,pre-ln-256x128,both-32x512 $B/grid $B/midstep > /dev/null 2>&1
cat $OUT/ab/ab.txt
python3 -c "
import json
for l in open('$OUT/ab/ab.jsonl'):
    r = json.loads(l)
    if 'mean_step_seconds' in r:
        print(r['configuration'], r['binary'], 'mean %.2f ms, execute host %.2f ms, prepare host %.2f ms' % (r['mean_step_seconds']*1e3, r['median_execute_host_seconds']*1e3, r['median_prepare_host_seconds']*1e3))
"
