#!/usr/bin/env bash
# Run 59: fused attention. bf16 parity of the fixtures (most now fused), BERT-base's bf16
# gradients fused against unfused, then the A/B of one build with and without the fusion
# (DROPBERT_FUSED_ATTENTION=0), and a profile of the fused baseline.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
printf '#!/usr/bin/env bash\nDROPBERT_FUSED_ATTENTION=0 exec "$(dirname "$0")/fused" "$@"\n' > $B/unfused; chmod +x $B/unfused
MATMUL=bf16 TOLERANCE=5e-2 timeout 150 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
rm -rf /tmp/bbc; timeout 120 $B/multi_config bert-base pretrain --steps 0 --eval-every 0 \
    --vocab tests/fixtures/vocab/bert-base-uncased.txt --out /tmp/bbc --backend cuda --quiet > $OUT/bert-base.log 2>&1
for mode in fused unfused; do
    flag=1; [ $mode = unfused ] && flag=0
    DROPBERT_FUSED_ATTENTION=$flag timeout 120 $B/multi_config bert-base grads --checkpoint /tmp/bbc/final \
        --batch $B/bbref/batch.safetensors --out /tmp/bb-$mode.safetensors --backend cuda --matmul bf16 >> $OUT/bert-base.log 2>&1
    echo "bert-base bf16 grads $mode rc=$?"
    python3 scripts/tensor_fingerprints.py make /tmp/bb-$mode.safetensors $OUT/bb-$mode.fingerprints.json
    python3 scripts/tensor_fingerprints.py compare $OUT/bb-$mode.fingerprints.json $B/bbref/grads.fingerprints.json \
        --tolerance 5e-2 > $OUT/bb-$mode-vs-cpu.txt 2>&1; echo "  $mode vs cpu fp32 (5e-2) rc=$?"; tail -2 $OUT/bb-$mode-vs-cpu.txt
done
python3 scripts/compare_tensor_files.py /tmp/bb-fused.safetensors /tmp/bb-unfused.safetensors --tolerance 5e-2 > $OUT/bb-fused-vs-unfused.txt 2>&1
echo "fused vs unfused rc=$?"; tail -4 $OUT/bb-fused-vs-unfused.txt
left=$((560 - SECONDS)); echo "A/B: ${left} s left"
ROUNDS=2 timeout $((left - 120)) bash benches/cuda_ab.sh /tmp/ab base-256x128,both-256x128 $B/fused $B/unfused > $OUT/ab.log 2>&1
ROUNDS=1 timeout $((560 - SECONDS - 30)) bash benches/cuda_ab.sh /tmp/ab2 token-drop-256x128,base-32x512 $B/fused $B/unfused > $OUT/ab2.log 2>&1
cp /tmp/ab/ab.txt $OUT/ab.txt; cp /tmp/ab/ab.jsonl $OUT/ab.jsonl; cp /tmp/ab2/ab.txt $OUT/ab2.txt; cp /tmp/ab2/ab.jsonl $OUT/ab2.jsonl
cat $OUT/ab.txt $OUT/ab2.txt
left=$((590 - SECONDS)); [ $left -gt 25 ] && DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=60 timeout $left $B/fused base-256x128 bench --backend cuda \
    --warmup 1 --steps 2 --at-step 100000 --matmul bf16 > $OUT/profile-base-fused.txt 2>&1
grep -i "fused\|in all ops" $OUT/profile-base-fused.txt | tail -8
