#!/usr/bin/env python3
"""Write reference MLM loss and parameter gradients for the ``grads`` subcommand.

The Rust side runs

    <binary> grads --checkpoint <dir> --batch <file.safetensors> --out <file.safetensors>

and its output is compared against what ``transformers`` computes here.

What it makes
-------------
Under ``tests/fixtures/grads/<case>/`` for each case below:

* ``checkpoint/`` -- a copy of ``tests/fixtures/hf/<case>/`` (made by
  ``make_reference_fixtures.py``): ``model.safetensors`` and ``vocab.txt``
  byte for byte, ``config.json`` identical except ``hidden_dropout_prob`` and
  ``attention_probs_dropout_prob`` set to 0.0, so a training step is
  deterministic.
* ``batch.safetensors`` -- ``input_ids``, ``token_type_ids``,
  ``attention_mask`` and ``labels``, all int64 [batch, seq] (label -100 = not
  predicted). See "Batches" below.
* ``expected.safetensors`` -- float32 only:

  - ``loss``: shape [] (a scalar), the mean cross-entropy over the predicted
    positions, exactly as ``BertForMaskedLM(..., labels=labels).loss`` gives it;
  - the gradient of that loss with respect to every parameter, under its
    Hugging Face ``BertForMaskedLM`` name, same shape as the parameter. These are
    exactly the tensor names of ``checkpoint/model.safetensors``:

      bert.embeddings.word_embeddings.weight        [vocab, hidden]
      bert.embeddings.position_embeddings.weight    [max_pos, hidden]
      bert.embeddings.token_type_embeddings.weight  [types, hidden]
      bert.embeddings.LayerNorm.{weight,bias}
      bert.encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias}
      bert.encoder.layer.<i>.attention.output.dense.{weight,bias}
      bert.encoder.layer.<i>.attention.output.LayerNorm.{weight,bias}
      bert.encoder.layer.<i>.intermediate.dense.{weight,bias}
      bert.encoder.layer.<i>.output.dense.{weight,bias}
      bert.encoder.layer.<i>.output.LayerNorm.{weight,bias}
      cls.predictions.bias                          [vocab]
      cls.predictions.transform.dense.{weight,bias}
      cls.predictions.transform.LayerNorm.{weight,bias}

    (``<i>`` over every layer; no pooler: BertForMaskedLM has none). The MLM
    decoder weight is tied to the word embeddings, so it is NOT written
    separately: the ``bert.embeddings.word_embeddings.weight`` gradient is the
    sum of the embedding-lookup and the decoder contributions. Likewise the
    decoder bias is ``cls.predictions.bias``. Gradients that are zero (e.g.
    position rows past ``seq``) are written as zeros. The attention *key* bias
    gradients are zero in exact arithmetic (softmax ignores a per-query
    constant); the stored values are float32 rounding noise (~1e-8), so compare
    them with an absolute tolerance.
* ``reference.json`` -- versions, seed, shapes, loss value, prediction counts,
  sha256 of the source weights and the finite-difference check results.

Cases
-----
* ``tiny_post_ln``  -- batch 4 x seq 16, token types 0 except one row whose
  second half (of its real tokens) is type 1.
* ``narrow_3layer`` -- batch 3 x seq 24 (type_vocab_size 3): one row of thirds
  typed 0/1/2, one row all 0, one row whose second half is 1.
* ``vocab_500`` -- ``tiny_post_ln``'s checkpoint cut to its first 500 tokens
  (word embeddings, ``cls.predictions.bias``, ``vocab.txt``, ``vocab_size``):
  a vocabulary off dropbert's logit-width multiple (64), so its decoder runs
  over 12 padding columns the loss must ignore. Batch 4 x seq 16.

Batches
-------
Each row is ``[CLS] w_1 .. w_n [SEP] [PAD] ..`` with word ids drawn uniformly
from 104..511 (never a special id) and a fixed real length per row (one row
full length, one very short). ``attention_mask`` is 1 on [CLS], the words and
[SEP], 0 on padding; ``token_type_ids`` are 0 on padding.

Labels follow BERT's recipe: per row, ``max(1, round(0.15 * n))`` of the n word
positions (never [CLS]/[SEP]/[PAD]) are predicted, label = the original id,
-100 everywhere else. At a predicted position the input becomes [MASK] with
probability 0.8, a random word id from 104..511 different from the original
with 0.1, or stays unchanged with 0.1. The script then makes sure that

* every row has at least one prediction (by the count above);
* one id is predicted twice in the batch (the original word at the first
  prediction of row 1 is set to that of row 0 before masking);
* all three replacements occur (if the draw missed "random" or "kept", the last
  [MASK]ed position(s) are switched to it);

and asserts each of these.

How the reference is computed
-----------------------------
``BertForMaskedLM.from_pretrained(checkpoint/, attn_implementation="eager",
dtype=float32)`` on CPU, ``model.train()`` (dropout rates are 0, so train and
eval forward passes are checked to be bit-identical), ``loss.backward()``, and
the gradients of ``model.named_parameters()`` (which lists the tied decoder
weight once, under the word-embedding name; the script asserts that
``cls.predictions.decoder.weight`` is absent, ``cls.predictions.bias`` present,
and that the names equal the checkpoint's tensor names). The loss is also
recomputed by hand with ``F.cross_entropy`` over the predicted positions.

Independent check: a float64 copy of the model is made and, for 3 scalar
entries of 3 different parameters per case (one of them a word-embedding row
whose id is both an input and a label, so both tied paths contribute), the
central finite difference ``(L(p+h) - L(p-h)) / 2h`` (h = 1e-5, float64) is
compared with the float64 autograd gradient and with the stored float32
gradient. Relative errors are printed and must be < 1e-4 (typically ~1e-9 and
~1e-6).

How to run
----------
    /path/to/venv/bin/python scripts/make_grads_fixtures.py \\
        [--src tests/fixtures/hf] [--out tests/fixtures/grads]

Deterministic: fixed seeds, float32, CPU, eager attention; reruns give
byte-identical files.
"""

import argparse
import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import BertForMaskedLM

REPO = Path(__file__).resolve().parent.parent
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
FIRST_WORD_ID = 104
MASK_FRACTION = 0.15
FD_STEP = 1e-5
FD_TOLERANCE = 1e-4

CASES = [
    dict(
        name="tiny_post_ln",
        seed=4004,
        batch=4,
        seq_len=16,
        # Real lengths including [CLS] and [SEP].
        lengths=[12, 16, 4, 9],
        # Per row: list of (start fraction of the real tokens, type id).
        types=[[(0.0, 0)], [(0.0, 0)], [(0.0, 0)], [(0.0, 0), (0.5, 1)]],
        # Finite-difference probes: (parameter name, how to pick the entry).
        fd=[
            ("bert.embeddings.word_embeddings.weight", "tied_row"),
            ("bert.encoder.layer.0.attention.self.query.weight", "max"),
            ("cls.predictions.transform.LayerNorm.weight", "max"),
        ],
    ),
    dict(
        name="vocab_500",
        source="tiny_post_ln",
        vocab_size=500,
        seed=6006,
        batch=4,
        seq_len=16,
        lengths=[16, 10, 5, 13],
        types=[[(0.0, 0)], [(0.0, 0), (0.5, 1)], [(0.0, 0)], [(0.0, 0)]],
        fd=[
            ("bert.embeddings.word_embeddings.weight", "tied_row"),
            ("cls.predictions.bias", "max"),
            ("cls.predictions.transform.dense.weight", "max"),
        ],
    ),
    dict(
        name="narrow_3layer",
        seed=5005,
        batch=3,
        seq_len=24,
        lengths=[24, 5, 15],
        types=[[(0.0, 0), (1 / 3, 1), (2 / 3, 2)], [(0.0, 0)], [(0.0, 0), (0.5, 1)]],
        fd=[
            ("bert.embeddings.word_embeddings.weight", "tied_row"),
            ("bert.encoder.layer.1.intermediate.dense.bias", "max"),
            ("cls.predictions.bias", "max"),
        ],
    ),
]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


VOCAB_TENSORS = ("bert.embeddings.word_embeddings.weight", "cls.predictions.bias")


def copy_checkpoint(src, dst, vocab_size=None):
    """Copies the checkpoint with dropout off; ``vocab_size`` cuts its vocabulary."""
    dst.mkdir(parents=True)
    for f in ("model.safetensors", "vocab.txt"):
        shutil.copyfile(src / f, dst / f)
    text = (src / "config.json").read_text()
    config = json.loads(text)
    # The source is written by transformers as indent-2 JSON; keep that format
    # so the copy differs only in the two dropout values.
    assert json.dumps(config, indent=2) + "\n" == text, "unexpected config.json format"
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        assert key in config, key
        config[key] = 0.0
    if vocab_size is not None:
        assert vocab_size < config["vocab_size"]
        config["vocab_size"] = vocab_size
        with safe_open(str(src / "model.safetensors"), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        for name in VOCAB_TENSORS:
            tensors[name] = tensors[name][:vocab_size].contiguous()
        save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
        lines = (src / "vocab.txt").read_text().splitlines(keepends=True)
        (dst / "vocab.txt").write_text("".join(lines[:vocab_size]))
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return config


def make_batch(case, vocab_size, type_vocab_size, gen):
    batch, seq, lengths = case["batch"], case["seq_len"], case["lengths"]
    assert len(lengths) == batch and len(case["types"]) == batch
    assert max(lengths) == seq and min(lengths) <= 5 and min(lengths) >= 3

    def randint(lo, hi, n=1):
        return torch.randint(lo, hi, (n,), generator=gen, dtype=torch.int64)

    original = torch.full((batch, seq), PAD, dtype=torch.int64)
    types = torch.zeros((batch, seq), dtype=torch.int64)
    mask = torch.zeros((batch, seq), dtype=torch.int64)
    predicted = []  # per row: sorted word positions to predict
    for r, n_real in enumerate(lengths):
        n = n_real - 2
        original[r, 0] = CLS
        original[r, 1:n_real - 1] = randint(FIRST_WORD_ID, vocab_size, n)
        original[r, n_real - 1] = SEP
        mask[r, :n_real] = 1
        for start, t in case["types"][r]:
            assert t < type_vocab_size
            types[r, int(round(start * n_real)):n_real] = t
        k = max(1, int(round(MASK_FRACTION * n)))
        pos = 1 + torch.randperm(n, generator=gen)[:k]
        predicted.append(sorted(pos.tolist()))

    # One id predicted twice: the first target of row 1 repeats row 0's.
    original[1, predicted[1][0]] = original[0, predicted[0][0]]

    labels = torch.full((batch, seq), -100, dtype=torch.int64)
    input_ids = original.clone()
    kinds = {}  # (row, pos) -> "mask" | "random" | "kept"
    for r, positions in enumerate(predicted):
        for p in positions:
            labels[r, p] = original[r, p]
            u = torch.rand((), generator=gen).item()
            kinds[(r, p)] = "mask" if u < 0.8 else ("random" if u < 0.9 else "kept")
    # Make sure every replacement kind occurs at least once.
    for kind in ("random", "kept"):
        if kind not in kinds.values():
            masked = [key for key, v in kinds.items() if v == "mask"]
            assert len(masked) >= 2, "too few predictions to cover all kinds"
            kinds[masked[-1]] = kind
    for (r, p), kind in kinds.items():
        if kind == "mask":
            input_ids[r, p] = MASK
        elif kind == "random":
            while True:
                w = randint(FIRST_WORD_ID, vocab_size).item()
                if w != original[r, p].item():
                    break
            input_ids[r, p] = w

    # Checks of the promised properties.
    is_special = (original == CLS) | (original == SEP) | (original == PAD)
    assert bool((labels[is_special] == -100).all())
    assert bool((labels[mask == 0] == -100).all())
    assert bool(((labels != -100).sum(dim=1) >= 1).all()), "a row without predictions"
    ids = labels[labels != -100].tolist()
    assert len(ids) != len(set(ids)), "no id predicted twice"
    assert set(kinds.values()) == {"mask", "random", "kept"}
    assert bool((types[mask == 0] == 0).all())
    assert set(types.unique().tolist()) == set(range(type_vocab_size))
    counts = {k: sum(1 for v in kinds.values() if v == k) for k in ("mask", "random", "kept")}
    tensors = {
        "input_ids": input_ids.contiguous(),
        "token_type_ids": types.contiguous(),
        "attention_mask": mask.contiguous(),
        "labels": labels.contiguous(),
    }
    return tensors, kinds, counts


def mlm_loss(model, batch):
    out = model(
        input_ids=batch["input_ids"],
        token_type_ids=batch["token_type_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
    )
    return out.loss, out.logits


def pick_entry(how, grad, batch, kinds):
    """Index of one scalar entry of a parameter to probe with finite differences."""
    if how == "max":
        flat = int(grad.abs().argmax())
        return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), grad.shape))
    assert how == "tied_row"
    # A row whose id is both an input token and a label (a "kept" prediction),
    # so the embedding lookup and the tied decoder both contribute.
    r, p = next(key for key, v in sorted(kinds.items()) if v == "kept")
    row = int(batch["input_ids"][r, p])
    assert row == int(batch["labels"][r, p])
    col = int(grad[row].abs().argmax())
    return (row, col)


def finite_difference_check(model32, grads32, batch, kinds, probes):
    model64 = copy.deepcopy(model32).to(torch.float64)
    model64.train()
    params64 = dict(model64.named_parameters())
    model64.zero_grad(set_to_none=True)
    loss64, _ = mlm_loss(model64, batch)
    loss64.backward()
    results = []
    for name, how in probes:
        p = params64[name]
        idx = pick_entry(how, grads32[name], batch, kinds)
        auto64 = p.grad[idx].item()
        with torch.no_grad():
            orig = p[idx].item()
            p[idx] = orig + FD_STEP
            plus = mlm_loss(model64, batch)[0].item()
            p[idx] = orig - FD_STEP
            minus = mlm_loss(model64, batch)[0].item()
            p[idx] = orig
        fd = (plus - minus) / (2 * FD_STEP)
        stored = grads32[name][idx].item()
        rel64 = abs(auto64 - fd) / abs(fd)
        rel32 = abs(stored - fd) / abs(fd)
        print(f"  fd {name}{list(idx)}: fd={fd:.10e} autograd64={auto64:.10e} "
              f"stored32={stored:.10e} rel_err64={rel64:.2e} rel_err32={rel32:.2e}")
        assert abs(fd) > 1e-6, f"{name}{idx}: gradient too small to probe"
        assert rel64 < FD_TOLERANCE and rel32 < FD_TOLERANCE, (name, idx, rel64, rel32)
        results.append(dict(param=name, index=list(idx), finite_difference=fd,
                            autograd_float64=auto64, stored_float32=stored,
                            rel_err_float64=rel64, rel_err_float32=rel32))
    return results


def make_case(case, src_root, out_root):
    name = case["name"]
    source = case.get("source", name)
    src = src_root / source
    case_dir = out_root / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    ckpt = case_dir / "checkpoint"
    config = copy_checkpoint(src, ckpt, case.get("vocab_size"))

    torch.manual_seed(case["seed"])
    gen = torch.Generator().manual_seed(case["seed"])
    batch, kinds, counts = make_batch(case, config["vocab_size"], config["type_vocab_size"], gen)

    model, info = BertForMaskedLM.from_pretrained(
        ckpt, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert model.config._attn_implementation == "eager"
    assert model.config.hidden_dropout_prob == 0.0 and model.config.attention_probs_dropout_prob == 0.0
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias

    # Dropout 0: train and eval forward passes must agree bit for bit.
    model.eval()
    with torch.no_grad():
        loss_eval, logits_eval = mlm_loss(model, batch)
    model.train()
    model.zero_grad(set_to_none=True)
    loss, logits = mlm_loss(model, batch)
    assert torch.equal(logits, logits_eval) and torch.equal(loss, loss_eval)
    # Same loss by hand: mean cross-entropy over the predicted positions.
    sel = batch["labels"] != -100
    by_hand = F.cross_entropy(logits[sel].double(), batch["labels"][sel])
    assert abs(by_hand.item() - loss.item()) < 1e-5 * max(1.0, abs(by_hand.item())), (by_hand, loss)
    loss.backward()

    names = [n for n, _ in model.named_parameters()]
    assert "cls.predictions.decoder.weight" not in names
    assert "cls.predictions.decoder.bias" not in names
    assert "cls.predictions.bias" in names
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        stored_names = set(f.keys())
    assert set(names) == stored_names, set(names) ^ stored_names
    grads = {}
    for n, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        assert g.shape == p.shape and g.dtype == torch.float32
        assert bool(torch.isfinite(g).all()), n
        grads[n] = g.detach().contiguous().clone()
    missing_grad = [n for n, p in model.named_parameters() if p.grad is None]

    fd_results = finite_difference_check(model, grads, batch, kinds, case["fd"])

    save_file(batch, str(case_dir / "batch.safetensors"), metadata={"format": "pt"})
    expected = {"loss": loss.detach().to(torch.float32).reshape(()).contiguous()}
    expected.update(grads)
    save_file(expected, str(case_dir / "expected.safetensors"), metadata={"format": "pt"})

    ref = {
        "case": name,
        "source": f"tests/fixtures/hf/{source}",
        "source_model_sha256": sha256(src / "model.safetensors"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "seed": case["seed"],
        "batch": case["batch"],
        "seq_len": case["seq_len"],
        "real_lengths": case["lengths"],
        "predicted_positions": int(sel.sum()),
        "replacements": counts,
        "dropout": 0.0,
        "mode": "train",
        "dtype": "float32",
        "attn_implementation": "eager",
        "loss": loss.item(),
        "num_gradients": len(grads),
        "params_without_grad": missing_grad,
        "finite_difference_step": FD_STEP,
        "finite_difference_checks": fd_results,
    }
    (case_dir / "reference.json").write_text(json.dumps(ref, indent=2) + "\n")
    for root, dirs, files in os.walk(case_dir):
        for f in files:
            os.chmod(Path(root) / f, 0o644)

    print(f"{name}: loss {loss.item():.8f} over {int(sel.sum())} predictions {counts}, "
          f"{len(grads)} gradients, no grad: {missing_grad}")
    print(f"  input_ids:\n{batch['input_ids']}\n  labels:\n{batch['labels']}\n"
          f"  token_type_ids:\n{batch['token_type_ids']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=str(REPO / "tests" / "fixtures" / "hf"))
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "grads"))
    args = ap.parse_args()

    transformers.utils.logging.disable_progress_bar()
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"safetensors {safetensors.__version__}")
    for case in CASES:
        make_case(case, Path(args.src), out_root)


if __name__ == "__main__":
    main()
