#!/usr/bin/env bash
# Run 60: fused attention v2 (cp.async staging, ldmatrix fragments, a quad's Philox counters
# drawn once): bf16 parity of the fixtures, the A/B against the unfused nodes in the same
# binary, a profile of the fused baseline, and BERT-base's bf16 gradients (run 59's timed out).
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
printf '#!/usr/bin/env bash\nDROPBERT_FUSED_ATTENTION=0 exec "$(dirname "$0")/fused" "$@"\n' > $B/unfused; chmod +x $B/unfused
MATMUL=bf16 TOLERANCE=5e-2 timeout 150 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
ROUNDS=2 timeout 200 bash benches/cuda_ab.sh /tmp/ab base-256x128,both-256x128 $B/fused $B/unfused > /tmp/ab.log 2>&1
ROUNDS=1 timeout 60 bash benches/cuda_ab.sh /tmp/ab2 token-drop-256x128 $B/fused $B/unfused > /tmp/ab2.log 2>&1
cat /tmp/ab/ab.txt /tmp/ab2/ab.txt | tee $OUT/ab.txt; cat /tmp/ab/ab.jsonl /tmp/ab2/ab.jsonl > $OUT/ab.jsonl
DROPBERT_PROFILE=1 DROPBERT_PROFILE_ROWS=50 timeout 60 $B/fused base-256x128 bench --backend cuda \
    --warmup 1 --steps 1 --at-step 100000 --matmul bf16 > $OUT/profile-base-fused.txt 2>&1
tail -52 $OUT/profile-base-fused.txt | grep -E "in all ops|Attention|Contraction \[256, 12|Elementwise \[256, 128, 12" | head -12
rm -rf /tmp/bbc; timeout 100 $B/multi_config bert-base pretrain --steps 0 --eval-every 0 \
    --vocab tests/fixtures/vocab/bert-base-uncased.txt --out /tmp/bbc --backend cuda --quiet > /tmp/bb.log 2>&1
left=$((590 - SECONDS)); echo "bert-base grads: ${left} s left"
start=$SECONDS; timeout $left $B/multi_config bert-base grads --checkpoint /tmp/bbc/final \
    --batch $B/bbref/batch.safetensors --out /tmp/bb-fused.safetensors --backend cuda --matmul bf16 >> /tmp/bb.log 2>&1
echo "bert-base bf16 grads fused rc=$? in $((SECONDS - start)) s"; tail -5 /tmp/bb.log | cut -c1-300 | tee $OUT/bb.log
python3 scripts/tensor_fingerprints.py make /tmp/bb-fused.safetensors /tmp/bb-fused.json > /dev/null 2>&1 &&
python3 scripts/tensor_fingerprints.py compare /tmp/bb-fused.json $B/bbref/grads.fingerprints.json --tolerance 5e-2 2>&1 | tail -2
