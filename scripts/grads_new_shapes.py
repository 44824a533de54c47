#!/usr/bin/env python3
"""Loss and gradients of random BertForMaskedLM checkpoints of shapes no fixture has.

Two steps, around a dropbert binary built for each shape (scripts/check_grads_new_shapes.sh
drives them):

    grads_new_shapes.py make    --seed N --out DIR    # checkpoint/, batch.safetensors,
                                                      # expected.safetensors, shape.json
    grads_new_shapes.py compare --dir DIR --actual OUT.safetensors

``make`` draws the dimensions from the seed (hidden, heads, layers, intermediate, vocabulary,
positions, token types, LayerNorm epsilon, sequence length and batch size), random weights
(std 0.02, LayerNorm weights near 1), and a batch with padding, two segments and about 15% of the
positions predicted (mostly [MASK], some random or unchanged ids, one id predicted twice);
dropout is 0. The reference is transformers' BertForMaskedLM loss and torch autograd, float32.
``compare`` prints the loss difference and the worst per-tensor relative error (largest
absolute difference over the tensor's largest reference value, with a floor of 1e-3 of the
largest gradient of the model for tensors whose true gradient is 0) and exits 1 above 1e-4.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForMaskedLM

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
FIRST_WORD = 104


def draw_shape(gen):
    pick = lambda options: options[torch.randint(len(options), (1,), generator=gen).item()]
    heads = pick([1, 2, 3, 4, 6])
    head_dim = pick([8, 12, 16, 20])
    seq = pick([9, 13, 20, 33])
    return {
        "hidden_size": heads * head_dim,
        "num_attention_heads": heads,
        "num_hidden_layers": pick([1, 2, 3, 5]),
        "intermediate_size": pick([24, 56, 100, 144]),
        "vocab_size": pick([300, 421, 777]),
        "max_position_embeddings": seq + pick([0, 7, 30]),
        "type_vocab_size": pick([1, 2, 4]),
        "layer_norm_eps": pick([1e-12, 1e-6, 1e-5]),
        "seq_len": seq,
        "batch": pick([1, 2, 3, 5]),
    }


def make(seed, out):
    gen = torch.Generator().manual_seed(seed)
    shape = draw_shape(gen)
    config = BertConfig(
        **{k: v for k, v in shape.items() if k not in ("seq_len", "batch")},
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config).float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    checkpoint = out / "checkpoint"
    model.save_pretrained(checkpoint, safe_serialization=True)
    vocab = [f"[unused{i}]" for i in range(shape["vocab_size"])]
    vocab[PAD], vocab[UNK], vocab[CLS], vocab[SEP], vocab[MASK] = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    for i in range(FIRST_WORD, shape["vocab_size"]):
        vocab[i] = f"w{i}"
    (checkpoint / "vocab.txt").write_text("\n".join(vocab) + "\n")

    batch, seq = shape["batch"], shape["seq_len"]
    capacity = batch * max(1, math.ceil(0.15 * seq))
    input_ids = torch.full((batch, seq), PAD, dtype=torch.int64)
    types = torch.zeros((batch, seq), dtype=torch.int64)
    mask = torch.zeros((batch, seq), dtype=torch.int64)
    labels = torch.full((batch, seq), -100, dtype=torch.int64)
    predicted = 0
    for r in range(batch):
        real = seq if r == 0 else int(torch.randint(4, seq + 1, (1,), generator=gen))
        input_ids[r, 0], input_ids[r, real - 1] = CLS, SEP
        input_ids[r, 1:real - 1] = torch.randint(FIRST_WORD, shape["vocab_size"], (real - 2,), generator=gen)
        mask[r, :real] = 1
        if shape["type_vocab_size"] > 1:
            types[r, real // 2:real] = 1
        for p in range(1, real - 1):
            if predicted < capacity and torch.rand((), generator=gen) < 0.2:
                labels[r, p] = input_ids[r, p]
                u = torch.rand((), generator=gen).item()
                if u < 0.8:
                    input_ids[r, p] = MASK
                elif u < 0.9:
                    input_ids[r, p] = int(torch.randint(FIRST_WORD, shape["vocab_size"], (1,), generator=gen))
                predicted += 1
    if predicted == 0:
        labels[0, 1] = input_ids[0, 1]
    tensors = {"input_ids": input_ids, "token_type_ids": types, "attention_mask": mask, "labels": labels}
    save_file(tensors, out / "batch.safetensors")

    model.zero_grad()
    loss = model(input_ids=input_ids, token_type_ids=types, attention_mask=mask, labels=labels).loss
    loss.backward()
    expected = {"loss": loss.detach().reshape(())}
    for name, p in model.named_parameters():
        if name == "cls.predictions.decoder.weight":
            continue
        expected[name] = p.grad.detach().contiguous()
    save_file(expected, out / "expected.safetensors")
    (out / "shape.json").write_text(json.dumps(shape, indent=2) + "\n")
    print(json.dumps(shape))


def compare(dir, actual_path):
    expected = load_file(dir / "expected.safetensors")
    actual = load_file(actual_path)
    floor = 1e-3 * max(t.abs().max().item() for n, t in expected.items() if n != "loss")
    loss_error = abs(actual["loss"].item() - expected["loss"].item()) / abs(expected["loss"].item())
    worst, worst_name = 0.0, ""
    for name, reference in expected.items():
        if name == "loss":
            continue
        if name not in actual:
            sys.exit(f"{name} missing from {actual_path}")
        error = (actual[name] - reference).abs().max().item() / max(reference.abs().max().item(), floor)
        if error > worst:
            worst, worst_name = error, name
    shape = json.loads((dir / "shape.json").read_text())
    print(f"{json.dumps(shape)}\n  loss rel. error {loss_error:.2e}; worst gradient {worst_name} rel. error {worst:.2e}")
    sys.exit(0 if worst < 1e-4 and loss_error < 1e-5 else 1)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("--dir", type=Path, required=True)
    c.add_argument("--actual", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "make":
        args.out.mkdir(parents=True, exist_ok=True)
        make(args.seed, args.out)
    else:
        compare(args.dir, args.actual)


if __name__ == "__main__":
    main()
