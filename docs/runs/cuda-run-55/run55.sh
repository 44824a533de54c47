#!/usr/bin/env bash
# Run 55: attention's products at kept tokens on dropbert's tensor-core kernel (build short)
# against cuBLAS (build vec): gradients of TokenDrop256x128 in bf16 from both builds compared,
# parity in bf16 (fixtures), then the A/B at 256 x 128.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
python3 scripts/make_random_mlm_batch.py /tmp/b256.safetensors 256 128 30522
timeout 90 $B/vec token-drop-256x128 pretrain --steps 0 --eval-every 0 --vocab tests/fixtures/vocab/bert-base-uncased.txt \
    --out /tmp/td0 --quiet > /tmp/td0.log 2>&1; echo "checkpoint rc=$?"; tail -2 /tmp/td0.log
for b in vec short; do
  timeout 90 $B/$b token-drop-256x128 grads --checkpoint /tmp/td0/final --batch /tmp/b256.safetensors \
      --out /tmp/g_$b.safetensors --backend cuda --matmul bf16 2>&1 | tail -1
done
python3 scripts/compare_tensor_files.py /tmp/g_short.safetensors /tmp/g_vec.safetensors --tolerance 2e-2 > $OUT/grads-short-vs-vec.txt 2>&1; echo "compare rc=$?"
tail -4 $OUT/grads-short-vs-vec.txt
MATMUL=bf16 TOLERANCE=5e-2 timeout 120 bash scripts/cuda_check.sh $B/multi_config $B/cpu /tmp/cb > $OUT/check-bf16.txt 2>&1; echo "bf16 check rc=$?"
grep -h "matches\|DIFF\|FAIL\|validation 30" $OUT/check-bf16.txt | sort | uniq -c
left=$((575 - SECONDS)); echo "A/B: ${left} s left"
ROUNDS=2 timeout $left bash benches/cuda_ab.sh /tmp/ab token-drop-256x128,both-256x128,base-256x128 $B/vec $B/short > $OUT/ab.log 2>&1
cp /tmp/ab/ab.txt /tmp/ab/ab.jsonl $OUT/ 2>/dev/null
cat /tmp/ab/ab.txt
