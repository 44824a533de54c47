#!/usr/bin/env python3
"""PyTorch's time for the training step that benches/train_step.rs measures: Hugging Face
BertForMaskedLM (BERT-tiny L2/H128/A2 and BERT-mini L4/H256/A4, vocabulary 30522), batch 32 x 128
random ids, 15% of positions labelled, dropout 0.1, AdamW, float32 on the CPU, with as many
threads as the machine has cores. Prints the median of 10 timed steps after 2 warm-up steps.

Usage: python3 benches/torch_cpu_step.py
"""
import os
import statistics
import time

import torch
from transformers import BertConfig, BertForMaskedLM

MODELS = {
    "bert-tiny 32x128": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
    "bert-mini 32x128": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    for name, dims in MODELS.items():
        config = BertConfig(vocab_size=30522, max_position_embeddings=512, **dims)
        model = BertForMaskedLM(config).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        input_ids = torch.randint(1000, 30522, (32, 128))
        labels = torch.where(torch.rand(32, 128) < 0.15, input_ids, torch.full_like(input_ids, -100))
        times = []
        for step in range(12):
            started = time.perf_counter()
            loss = model(input_ids=input_ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= 2:
                times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"torch {torch.__version__} {name}: median step {median:.3f} s, {32 * 128 / median:.0f} tokens/s")


if __name__ == "__main__":
    main()
