#!/usr/bin/env python3
"""Reference speed of one BERT masked-LM training step in PyTorch eager (transformers'
BertForMaskedLM, AdamW, random token ids, 15% of positions labelled): the number dropbert's CUDA
backend is compared with. Usage: torch_bert_step.py [--layers 12 --hidden 768 ...] [--tf32]."""
import argparse
import time

import torch
from transformers import BertConfig, BertForMaskedLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--intermediate", type=int, default=3072)
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tf32", action="store_true", help="TF32 matrix products (PyTorch's default is off)")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(0)
    config = BertConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=args.intermediate)
    model = BertForMaskedLM(config).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), device="cuda")
    labels = torch.full_like(ids, -100)
    mask = torch.rand(ids.shape, device="cuda") < 0.15
    labels[mask] = ids[mask]

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    mode = "tf32" if args.tf32 else "fp32"
    print(f"torch {torch.__version__} {mode}: batch {args.batch} x {args.seq}, median step "
          f"{median * 1e3:.1f} ms, {args.batch * args.seq / median:,.0f} tokens/s "
          f"({torch.cuda.get_device_name()})")


if __name__ == "__main__":
    main()
