#!/usr/bin/env python3
"""A random masked-LM batch file for `<binary> grads --batch`, without numpy or torch:
`make_random_mlm_batch.py OUT.safetensors BATCH SEQ VOCAB [SEED]`. Sequences of 60 to SEQ tokens
([CLS] = 101 first, [SEP] = 102 last, padding after), two segments, about 15 % of the inner
positions predicted with random labels."""
import json
import random
import struct
import sys


def main():
    out, batch, seq, vocab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    random.seed(int(sys.argv[5]) if len(sys.argv) > 5 else 5)
    columns = {"input_ids": [], "token_type_ids": [], "attention_mask": [], "labels": []}
    for _ in range(batch):
        length = random.randint(min(60, seq), seq)
        for position in range(seq):
            inside = position < length
            inner = 0 < position < length - 1
            token = 101 if position == 0 else 102 if position == length - 1 else random.randint(1000, vocab - 1)
            columns["input_ids"].append(token if inside else 0)
            columns["attention_mask"].append(1 if inside else 0)
            columns["token_type_ids"].append(1 if inside and position >= length // 2 else 0)
            predicted = inner and random.random() < 0.15
            columns["labels"].append(random.randint(1000, vocab - 1) if predicted else -100)
    header, data = {}, b""
    for name, values in columns.items():
        blob = struct.pack(f"<{len(values)}q", *values)
        header[name] = {"dtype": "I64", "shape": [batch, seq], "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    encoded = json.dumps(header).encode()
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + data)
    print(f"{out}: {sum(label >= 0 for label in columns['labels'])} predicted positions")


if __name__ == "__main__":
    main()
