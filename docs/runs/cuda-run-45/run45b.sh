#!/usr/bin/env bash
# Run 45b: run 45's call ran out of time before torch.compile at 32 x 512; this call runs that
# row and dropbert's Base32x512 again, side by side.
set -u
B=.cuda-run
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
timeout 60 $B/attn4 base-32x512 bench --backend cuda --warmup 2 --steps 10 --at-step 100000 --matmul bf16 --json > $OUT/bench.jsonl 2>$OUT/bench.log
timeout 200 python3 benches/torch_reference.py --batch 32 --seq 512 --steps 10 --modes bf16-compile > $OUT/torch.jsonl 2>$OUT/torch.log
cat $OUT/bench.jsonl $OUT/torch.jsonl
