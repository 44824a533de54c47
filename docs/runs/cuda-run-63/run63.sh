#!/usr/bin/env bash
# Run 63: bf16 parity of commit 0419703, one step's profile of PreLn and Both at both shapes,
# one A/B round of fused attention against its switch.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
printf '#!/usr/bin/env bash\nDROPBERT_FUSED_ATTENTION=0 exec "$(dirname "$0")/grid" "$@"\n' > $B/unfused; chmod +x $B/unfused
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
for c in pre-ln-256x128 both-256x128 pre-ln-32x512 both-32x512; do
    DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=90 timeout 90 $B/grid $c bench --backend cuda \
        --warmup 2 --steps 1 --at-step 100000 --matmul bf16 > /tmp/p.txt 2>&1; echo "profile $c rc=$?"
    # The last report is the measured step's.
    start=$(grep -n "in all ops on the device" /tmp/p.txt | tail -1 | cut -d: -f1)
    tail -n +"$start" /tmp/p.txt | cut -c1-240 > $OUT/profile-$c.txt
done
echo "A/B with $((590 - SECONDS)) s left"
ROUNDS=1 timeout $((590 - SECONDS)) bash benches/cuda_ab.sh $OUT/ab base-256x128,both-256x128 $B/grid $B/unfused > /dev/null 2>&1
cat $OUT/ab/ab.txt
