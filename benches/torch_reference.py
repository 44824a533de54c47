#!/usr/bin/env python3
"""One training step of Hugging Face BertForMaskedLM in PyTorch, timed: the reference that
`<binary> bench` is compared with (docs/perf.md).

    python benches/torch_reference.py --layers 12 --hidden 768 --heads 12 --intermediate 3072 \
        --vocab 30522 --batch 256 --seq 128 [--modes fp32,tf32,bf16,bf16-compile] [--device cuda]

A step is what dropbert's `bench` times: forward of BertForMaskedLM with labels (loss over the
predicted positions), backward, gradient clipping at 1.0 and fused AdamW, on random ids with every
position real and floor(0.15 * seq) positions per sequence predicted, dropout 0.1. Modes:
``fp32`` (strict float32 matmuls, PyTorch's default), ``tf32`` (TF32 matmuls on the GPU, as
`torch.backends.cuda.matmul.allow_tf32`), ``bf16`` (autocast to bfloat16, float32 master weights,
TF32 for what stays float32), ``bf16-compile`` (the same under torch.compile). Each mode:
warm-up steps, then the median of timed steps (on the GPU, queued back to back with a CUDA event
after each), tokens/s and peak GPU memory; one JSON object per mode on stdout.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import BertConfig, BertForMaskedLM


def synthetic_batch(vocab, batch, seq, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    first_word = 1000 if vocab > 1000 else 5
    input_ids = torch.randint(first_word, vocab, (batch, seq), generator=gen)
    labels = torch.full((batch, seq), -100, dtype=torch.int64)
    per_row = max(1, seq * 15 // 100)
    for row in range(batch):
        positions = torch.randperm(seq, generator=gen)[:per_row]
        labels[row, positions] = input_ids[row, positions]
    return {
        "input_ids": input_ids.to(device),
        "token_type_ids": torch.zeros_like(input_ids).to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "labels": labels.to(device),
    }


def measure(args, mode):
    device = torch.device(args.device)
    config = BertConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, intermediate_size=args.intermediate,
        max_position_embeddings=max(512, args.seq), hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(0)
    model = BertForMaskedLM(config).to(device).train()
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)
    batch = synthetic_batch(args.vocab, args.batch, args.seq, device)
    use_bf16 = mode.startswith("bf16")
    torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
    torch.backends.cudnn.allow_tf32 = mode != "fp32"
    forward = torch.compile(model) if mode.endswith("compile") else model

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = forward(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    if device.type == "cuda" and args.one_at_a_time:
        for _ in range(args.steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
    elif device.type == "cuda":
        # As dropbert's bench times its steps: back to back, with an event after each, so that a
        # step's time is the device's from the event before it to the one after (any wait for the
        # host included). One step is queued before the first event, so that every timed step
        # starts behind another.
        step()
        marks = [torch.cuda.Event(enable_timing=True)]
        marks[0].record()
        for _ in range(args.steps):
            step()
            marks.append(torch.cuda.Event(enable_timing=True))
            marks[-1].record()
        torch.cuda.synchronize()
        times = [before.elapsed_time(after) / 1000.0 for before, after in zip(marks, marks[1:])]
    else:
        for _ in range(args.steps):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "reference": "transformers BertForMaskedLM", "mode": mode, "device": str(device),
        "torch": torch.__version__, "layers": args.layers, "hidden": args.hidden,
        "batch": args.batch, "seq": args.seq, "warmup": args.warmup, "steps": args.steps,
        "queued_ahead": not args.one_at_a_time, "median_step_seconds": median,
        "tokens_per_second": args.batch * args.seq / median,
        "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("layers", 12), ("hidden", 768), ("heads", 12), ("intermediate", 3072),
                          ("vocab", 30522), ("batch", 32), ("seq", 128), ("warmup", 3), ("steps", 10)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--modes", default="fp32,tf32,bf16,bf16-compile")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="wait for each step before timing the next (as before run 77)")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        try:
            result = measure(args, mode)
        except torch.OutOfMemoryError as error:
            result = {"reference": "transformers BertForMaskedLM", "mode": mode,
                      "batch": args.batch, "seq": args.seq, "failed": f"out of memory: {error}"}
        print(json.dumps(result), flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
