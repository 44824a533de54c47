#!/usr/bin/env python3
"""Compares a `<binary> hidden` output with Hugging Face transformers' BertModel on the same
checkpoint and text (run where torch and transformers are installed).

Usage: python3 scripts/compare_hidden.py CHECKPOINT_DIR INPUT_TXT HIDDEN_SAFETENSORS SEQ_LEN
Prints whether the token ids agree and the largest absolute difference of last_hidden_state.
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import BertModel, BertTokenizer


def main(checkpoint, input_txt, hidden_file, seq_len):
    lines = open(input_txt, encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokenizer = BertTokenizer.from_pretrained(checkpoint)
    batch = tokenizer(lines, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
    model = BertModel.from_pretrained(checkpoint, attn_implementation="eager").eval()
    with torch.no_grad():
        reference = model(**batch).last_hidden_state
    ours = load_file(hidden_file)
    print("token ids equal:", torch.equal(ours["input_ids"], batch["input_ids"]))
    print("attention mask equal:", torch.equal(ours["attention_mask"], batch["attention_mask"]))
    print("max abs difference of last_hidden_state:", (ours["last_hidden_state"] - reference).abs().max().item())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
