#!/usr/bin/env python3
"""Write reference fixtures for token dropping and progressive layer dropping.

The reference is ``scripts/drop_reference.py`` (plain PyTorch, written for this
project; see its docstring for the exact algorithms). The Rust side runs one
MLM training step on the same checkpoint + batch and compares its loss,
gradients and updated token-importance table against ``expected.safetensors``.

What it makes
-------------
Under ``tests/fixtures/drops/<case>/`` for each case below:

* ``checkpoint/`` -- ``config.json`` (written by ``transformers.BertConfig``,
  both dropout rates 0.0; Pre-LN cases add ``"dropbert_block_layout":
  "pre-ln"``), ``model.safetensors`` (float32; Hugging Face
  ``BertForMaskedLM`` names for Post-LN, DeepSpeed-style
  ``PreAttentionLayerNorm``/``PostAttentionLayerNorm``/``FinalLayerNorm`` for
  Pre-LN; no pooler, no separate decoder weight) and ``vocab.txt`` (a byte copy
  of ``tests/fixtures/hf/tiny_post_ln/vocab.txt``: [PAD]=0 [UNK]=100 [CLS]=101
  [SEP]=102 [MASK]=103).
* ``batch.safetensors`` -- ``input_ids``, ``token_type_ids``,
  ``attention_mask``, ``labels`` (int64 [4, 16]); ``token_importance``
  (float32 [512], token-drop cases); ``layer_gates`` (float32 [layers]) and
  ``step`` (int64 scalar) for layer-drop cases.
* ``expected.safetensors`` -- ``loss`` (float32 []), the float32 gradient of
  every parameter under its checkpoint name (tied decoder inside
  ``bert.embeddings.word_embeddings.weight``; zeros for gated-off blocks), and
  for token-drop cases ``token_importance`` (updated table, float32 [512]) and
  ``kept_positions`` (int64 [4, K], ascending; for debugging).
* ``reference.json`` -- versions, seed, dims, D, K, gates, step, theta, keep
  probabilities, loss, kept positions, the importance entries that changed,
  the finite-difference probes and the self-check numbers below.

Cases (all: vocab 512, hidden 32, heads 2, intermediate 64, max positions 64,
type vocab 2, LayerNorm eps 1e-12, exact gelu, batch 4 x seq 16)

    case                   layout  layers  token drop  layer drop
    token_drop_post_ln     post-ln 4       D=1, K=8    off
    token_drop_last_split  post-ln 3       D=1, K=5    off
    layer_drop_pre_ln      pre-ln  4       off         gates [1,0,1,1], step 700
    both_pre_ln            pre-ln  4       D=1, K=8    gates [1,1,0,1], step 700
    both_split_gated_off   pre-ln  4       D=1, K=8    gates [1,0,1,1], step 3000

theta_bar 0.5, gamma 0.001, beta 0.995 everywhere.

Weights
-------
Seeded random: every matrix (embeddings, Linear weights) N(0, 0.02), every
LayerNorm weight 1 + N(0, 0.1), every bias (LayerNorm biases, Linear biases,
``cls.predictions.bias``) N(0, 0.02).

Batches
-------
Real lengths 16, 12, 9, 14 (row 0 full length, row 2 only 9 real tokens).
Each row is ``[CLS] words [SEP] [PAD]..``; row 0 is two segments
``[CLS] a.. [SEP] b.. [SEP]`` with token type 1 on the second segment
(including its [SEP]); everything else type 0. Word ids uniform in 105..511,
with a forced repeat of a word inside rows 1 and 3. Predictions: 3, 3, 2, 3
per row (11 in all; the Rust side is compiled for at most
batch * ceil(0.15 * seq) = 12), never at [CLS]/[SEP]/[PAD]; one "random"
(another ordinary id) and one "kept" (unchanged id) prediction, the rest
[MASK]; the first label of row 1 equals the first label of row 0 (one id
predicted twice). ``token_importance``: uniform [0, 12] (float32), the
allow-list ids [UNK] [CLS] [SEP] [MASK] 1e4, [PAD] -1e4; in every row two
unpredicted word ids share the value 6.0 (ties inside a sequence), and in
token-drop cases one row's last-kept / first-dropped tier-2 words are given
equal importance, so the position tiebreak decides the K boundary there (the
script asserts that a boundary tie occurs).

Checks (made on every run, numbers in ``reference.json`` and printed)
---------------------------------------------------------------------
* the CLI (``drop_reference.py`` run as a subprocess with the recorded
  arguments) writes tensors bit-identical to ``expected.safetensors``;
* central finite differences (float64 copy, h = 1e-5) of a few gradient
  entries per case, including a tied word-embedding row, a parameter of the
  split layer and (where gated off) a block whose gradient must be 0;
  selection is piecewise constant in the parameters, so FD is valid;
* token-drop cases: K = S gives the same loss (bit for bit) and gradients
  (up to float32 summation order) as no token dropping;
  a second, independent formulation (vectorised stable-argsort selection,
  all-token middle layers with dropped keys masked, ``torch.where`` merge)
  gives the same kept positions, loss and grads;
* Pre-LN cases: all gates 1 at step 0 (theta = 1, p_i = 1) equals the plain
  Pre-LN model;
* Post-LN cases: the plain forward/backward (no dropping) agrees with
  ``transformers.BertForMaskedLM`` (eager attention) on the same checkpoint.

How to run
----------
    /path/to/venv/bin/python scripts/make_drop_fixtures.py [--out tests/fixtures/drops]

Deterministic (fixed seeds, float32, CPU); reruns give byte-identical files.
"""

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drop_reference as dr  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VOCAB_SRC = REPO / "tests" / "fixtures" / "hf" / "tiny_post_ln" / "vocab.txt"
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
FIRST_WORD, VOCAB = 105, 512
BATCH, SEQ = 4, 16
LENGTHS = [16, 12, 9, 14]
PREDICTIONS = [3, 3, 2, 3]
MAX_PREDICTIONS = 12
TIE_VALUE = 6.0
THETA_BAR, GAMMA, BETA = 0.5, 0.001, 0.995
FD_STEP = 1e-5
FD_TOLERANCE = 1e-4

DIMS = dict(vocab_size=VOCAB, hidden_size=32, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12)

CASES = [
    dict(name="token_drop_post_ln", seed=7101, layout="post-ln", layers=4,
         token_drop=(1, 8), gates=None, step=None,
         fd=[("bert.embeddings.word_embeddings.weight", "tied_row"),
             ("bert.encoder.layer.1.attention.self.query.weight", "max"),
             ("bert.encoder.layer.2.intermediate.dense.bias", "max"),
             ("bert.encoder.layer.0.output.LayerNorm.weight", "max")]),
    dict(name="token_drop_last_split", seed=7202, layout="post-ln", layers=3,
         token_drop=(1, 5), gates=None, step=None,
         fd=[("bert.embeddings.word_embeddings.weight", "tied_row"),
             ("bert.encoder.layer.1.attention.self.value.weight", "max"),
             ("bert.embeddings.position_embeddings.weight", "max")]),
    dict(name="layer_drop_pre_ln", seed=7303, layout="pre-ln", layers=4,
         token_drop=None, gates=[1, 0, 1, 1], step=700,
         fd=[("bert.embeddings.word_embeddings.weight", "tied_row"),
             ("bert.encoder.layer.2.attention.output.dense.weight", "max"),
             ("bert.encoder.layer.3.PostAttentionLayerNorm.weight", "max"),
             ("bert.encoder.layer.1.intermediate.dense.weight", "max")]),
    dict(name="both_pre_ln", seed=7404, layout="pre-ln", layers=4,
         token_drop=(1, 8), gates=[1, 1, 0, 1], step=700,
         fd=[("bert.embeddings.word_embeddings.weight", "tied_row"),
             ("bert.encoder.layer.0.PreAttentionLayerNorm.weight", "max"),
             ("bert.encoder.layer.1.attention.self.value.weight", "max"),
             ("bert.encoder.layer.1.attention.self.key.weight", "max"),
             ("bert.encoder.layer.3.intermediate.dense.bias", "max"),
             ("bert.encoder.FinalLayerNorm.weight", "max"),
             ("bert.encoder.layer.2.output.dense.weight", "max")]),
    dict(name="both_split_gated_off", seed=7505, layout="pre-ln", layers=4,
         token_drop=(1, 8), gates=[1, 0, 1, 1], step=3000,
         fd=[("bert.embeddings.word_embeddings.weight", "tied_row"),
             ("bert.encoder.layer.2.attention.self.query.weight", "max"),
             ("bert.encoder.layer.0.PostAttentionLayerNorm.bias", "max"),
             ("bert.encoder.layer.1.attention.self.query.weight", "max")]),
]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# Checkpoint
# --------------------------------------------------------------------------

def write_checkpoint(case, ckpt, gen):
    ckpt.mkdir(parents=True)
    shutil.copyfile(VOCAB_SRC, ckpt / "vocab.txt")
    cfg = BertConfig(num_hidden_layers=case["layers"], hidden_act="gelu",
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     pad_token_id=0, tie_word_embeddings=True, **DIMS)
    cfg.architectures = ["BertForMaskedLM"]
    cfg.save_pretrained(ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    if case["layout"] == "pre-ln":
        config["dropbert_block_layout"] = "pre-ln"
    (ckpt / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    special = dr.read_special_ids(ckpt / "vocab.txt")
    assert special == {"[PAD]": PAD, "[UNK]": UNK, "[CLS]": CLS, "[SEP]": SEP, "[MASK]": MASK}
    model = dr.DropBertMLM(config, special)
    state = {}
    for name, p in model.named_parameters():
        if name.endswith("LayerNorm.weight"):
            v = 1.0 + 0.1 * torch.randn(p.shape, generator=gen)
        else:  # matrices and every bias
            v = 0.02 * torch.randn(p.shape, generator=gen)
        state[name] = v.to(torch.float32).contiguous()
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    return config


# --------------------------------------------------------------------------
# Batch
# --------------------------------------------------------------------------

def make_batch(gen):
    def randint(lo, hi, n=1):
        return torch.randint(lo, hi, (n,), generator=gen, dtype=torch.int64)

    original = torch.full((BATCH, SEQ), PAD, dtype=torch.int64)
    types = torch.zeros((BATCH, SEQ), dtype=torch.int64)
    mask = torch.zeros((BATCH, SEQ), dtype=torch.int64)
    word_pos = []
    for r, n_real in enumerate(LENGTHS):
        original[r, 0] = CLS
        original[r, 1:n_real - 1] = randint(FIRST_WORD, VOCAB, n_real - 2)
        original[r, n_real - 1] = SEP
        mask[r, :n_real] = 1
        words = list(range(1, n_real - 1))
        if r == 0:  # two segments: [CLS] a.. [SEP] b.. [SEP]
            mid = n_real // 2 - 1
            original[r, mid] = SEP
            types[r, mid + 1:n_real] = 1
            words.remove(mid)
        word_pos.append(words)
    # A repeated word inside rows 1 and 3 (same id at two positions).
    for r in (1, 3):
        original[r, word_pos[r][-1]] = original[r, word_pos[r][1]]

    predicted = []
    for r, k in enumerate(PREDICTIONS):
        cand = word_pos[r]
        perm = torch.randperm(len(cand), generator=gen)[:k].tolist()
        predicted.append(sorted(cand[i] for i in perm))
    # One label id predicted twice: row 1's first target repeats row 0's.
    original[1, predicted[1][0]] = original[0, predicted[0][0]]

    flat = [(r, p) for r in range(BATCH) for p in predicted[r]]
    assert len(flat) <= MAX_PREDICTIONS
    order = torch.randperm(len(flat), generator=gen).tolist()
    kinds = {flat[i]: "mask" for i in order}
    kinds[flat[order[0]]] = "random"
    kinds[flat[order[1]]] = "kept"

    labels = torch.full((BATCH, SEQ), dr.IGNORE, dtype=torch.int64)
    input_ids = original.clone()
    for (r, p), kind in sorted(kinds.items()):
        labels[r, p] = original[r, p]
        if kind == "mask":
            input_ids[r, p] = MASK
        elif kind == "random":
            while True:
                w = randint(FIRST_WORD, VOCAB).item()
                if w != original[r, p].item():
                    break
            input_ids[r, p] = w

    is_special = (original == CLS) | (original == SEP) | (original == PAD)
    assert bool((labels[is_special] == dr.IGNORE).all())
    assert bool((labels[mask == 0] == dr.IGNORE).all())
    ids = labels[labels != dr.IGNORE].tolist()
    assert len(ids) != len(set(ids)), "no label id predicted twice"
    ordinary = [k for k, v in kinds.items() if v != "mask"]
    assert len(ordinary) >= 2
    for r, p in ordinary:
        assert FIRST_WORD <= input_ids[r, p] < VOCAB
    assert bool((types[mask == 0] == 0).all())
    batch = {"input_ids": input_ids, "token_type_ids": types,
             "attention_mask": mask, "labels": labels}
    return {k: v.contiguous() for k, v in batch.items()}, kinds


def tier_keys(batch, imp, r):
    """(tier, -score, j, id) for every position of row r, sorted."""
    sel = []
    for j in range(SEQ):
        tok = int(batch["input_ids"][r, j])
        if tok in (UNK, CLS, SEP, MASK):
            tier = 0
        elif int(batch["labels"][r, j]) != dr.IGNORE:
            tier = 1
        elif tok == PAD:
            tier = 3
        else:
            tier = 2
        sel.append((tier, -float(imp[tok]), j, tok))
    return sorted(sel)


def make_importance(batch, gen, kept):
    imp = (12.0 * torch.rand(VOCAB, generator=gen)).to(torch.float32)
    imp[[UNK, CLS, SEP, MASK]] = 1e4
    imp[PAD] = -1e4
    # Ties inside every sequence: two unpredicted word ids per row share TIE_VALUE.
    for r in range(BATCH):
        words = []
        for j in range(SEQ):
            tok = int(batch["input_ids"][r, j])
            if (tok >= FIRST_WORD and int(batch["labels"][r, j]) == dr.IGNORE
                    and tok not in words):
                words.append(tok)
        for tok in words[1:3]:
            imp[tok] = TIE_VALUE
    if kept is not None:
        # A tie exactly at the K boundary in one row (position decides).
        for r in (2, 1, 3, 0):
            keys = tier_keys(batch, imp, r)
            a, b = keys[kept - 1], keys[kept]
            if a[0] == b[0] == 2 and a[3] != b[3]:
                imp[b[3]] = imp[a[3]]
                break
    return imp.contiguous()


def boundary_ties(batch, imp, kept):
    """Rows whose K-th and (K+1)-th sort keys share (tier, score)."""
    rows = []
    for r in range(BATCH):
        keys = tier_keys(batch, imp, r)
        if keys[kept - 1][:2] == keys[kept][:2]:
            rows.append(r)
    return rows


def rows_with_ties(batch, imp):
    rows = []
    for r in range(BATCH):
        seen = {}
        for tier, s, j, tok in tier_keys(batch, imp, r):
            if tier == 2:
                seen.setdefault(s, set()).add(tok)
        if any(len(v) > 1 for v in seen.values()):
            rows.append(r)
    return rows


# --------------------------------------------------------------------------
# Independent second formulation of token dropping (for the self-check)
# --------------------------------------------------------------------------

def select_vectorised(batch, imp, k):
    """Top-K by repeated stable argsorts: position, then score desc, then tier."""
    ids, labels = batch["input_ids"], batch["labels"]
    allow = (ids == UNK) | (ids == CLS) | (ids == SEP) | (ids == MASK)
    tier = torch.full_like(ids, 2)
    tier[ids == PAD] = 3
    tier[labels != dr.IGNORE] = 1
    tier[allow] = 0
    score = imp[ids]
    order = torch.arange(SEQ).expand(ids.shape[0], -1)
    o = torch.argsort(-torch.gather(score, 1, order), dim=1, stable=True)
    order = torch.gather(order, 1, o)
    o = torch.argsort(torch.gather(tier, 1, order), dim=1, stable=True)
    order = torch.gather(order, 1, o)
    return torch.sort(order[:, :k], dim=1).values


def masked_formulation_logits(model, batch, d, kept, gates, probs):
    """Token dropping via key masks on all S positions instead of gather/scatter."""
    h = model.bert.embeddings(batch["input_ids"], batch["token_type_ids"])
    full = model.additive_mask(batch["attention_mask"], h.dtype)
    L = model.num_layers
    keep = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
    keep.scatter_(1, kept, True)
    only_kept = torch.where(keep, full, torch.full_like(full, torch.finfo(h.dtype).min))
    for i in range(d):
        h = model.block(i, h, h, full, gates, probs)
    h_d = h
    y = model.block(d, h_d, h_d, full, gates, probs)
    for i in range(d + 1, L - 1):
        y = model.block(i, y, y, only_kept, gates, probs)
    h = torch.where(keep[:, :, None], y, h_d)
    h = model.block(L - 1, h, h, full, gates, probs)
    if model.layout == "pre-ln":
        h = model.bert.encoder.FinalLayerNorm(h)
    return model.mlm_logits(h)


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
            for n, p in model.named_parameters()}


def max_diff(a, b):
    """Largest |a - b| over the shared tensors (loss and gradients)."""
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if k in b and a[k].is_floating_point())


# --------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------

def pick_entry(how, grad, batch, kinds):
    if how == "max":
        if float(grad.abs().max()) == 0.0:
            return tuple(0 for _ in grad.shape)
        flat = int(grad.abs().argmax())
        return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), grad.shape))
    assert how == "tied_row"
    r, p = next(key for key, v in sorted(kinds.items()) if v == "kept")
    row = int(batch["input_ids"][r, p])
    assert row == int(batch["labels"][r, p])
    return (row, int(grad[row].abs().argmax()))


def finite_differences(ckpt, batch, td, ld, expected, kinds, probes):
    model = dr.load_model(ckpt, torch.float64)
    params = dict(model.named_parameters())

    def loss_fn():
        logits, kept = model(batch, token_drop=td, layer_drop=ld)
        sel = batch["labels"] != dr.IGNORE
        return F.cross_entropy(logits[sel], batch["labels"][sel]), kept

    loss, kept64 = loss_fn()
    if td is not None:
        assert torch.equal(kept64, expected["kept_positions"])
    g64 = grads_of(model, loss)
    results = []
    for name, how in probes:
        idx = pick_entry(how, expected[name], batch, kinds)
        p = params[name]
        with torch.no_grad():
            orig = p[idx].item()
            p[idx] = orig + FD_STEP
            plus = loss_fn()[0].item()
            p[idx] = orig - FD_STEP
            minus = loss_fn()[0].item()
            p[idx] = orig
        fd = (plus - minus) / (2 * FD_STEP)
        auto = g64[name][idx].item()
        stored = expected[name][idx].item()
        if auto == 0.0 and stored == 0.0:  # a gated-off block: FD must vanish too
            assert fd == 0.0, (name, idx, fd)
            rel64 = rel32 = 0.0
        else:
            assert abs(fd) > 1e-7, f"{name}{idx}: gradient too small to probe ({fd})"
            rel64 = abs(auto - fd) / abs(fd)
            rel32 = abs(stored - fd) / abs(fd)
        print(f"  fd {name}{list(idx)}: fd={fd:.10e} autograd64={auto:.10e} "
              f"stored32={stored:.10e} rel64={rel64:.2e} rel32={rel32:.2e}")
        assert rel64 < FD_TOLERANCE and rel32 < FD_TOLERANCE, (name, idx, rel64, rel32)
        results.append(dict(param=name, index=list(idx), finite_difference=fd,
                            autograd_float64=auto, stored_float32=stored,
                            rel_err_float64=rel64, rel_err_float32=rel32))
    return results


# --------------------------------------------------------------------------
# Self-checks
# --------------------------------------------------------------------------

def self_checks(case, ckpt, batch, imp, td, ld, expected):
    out = {}
    model = dr.load_model(ckpt)
    L = case["layers"]
    plain_ld = ld
    if td is not None:
        # K = S: the same as no token dropping (with the case's gates, if any).
        full_td = dict(drop_layer=td["drop_layer"], kept=SEQ, importance=imp)
        a, _ = dr.train_step(model, batch, token_drop=full_td, layer_drop=plain_ld)
        b, _ = dr.train_step(model, batch, token_drop=None, layer_drop=plain_ld)
        out["k_equals_s_vs_no_token_drop_loss"] = [a["loss"].item(), b["loss"].item()]
        out["k_equals_s_vs_no_token_drop_max_abs_diff"] = max_diff(a, b)
        assert torch.equal(a["loss"], b["loss"]), out
        # Second formulation: vectorised selection + key masking + torch.where.
        kept2 = select_vectorised(batch, imp, td["kept"])
        assert torch.equal(kept2, expected["kept_positions"]), (kept2, expected["kept_positions"])
        gates = ld["gates"] if ld else None
        probs = ld["keep_probs"] if ld else None
        logits = masked_formulation_logits(model, batch, td["drop_layer"], kept2, gates, probs)
        sel = batch["labels"] != dr.IGNORE
        loss = F.cross_entropy(logits[sel], batch["labels"][sel])
        g = grads_of(model, loss)
        g["loss"] = loss.detach()
        out["masked_formulation_max_abs_diff"] = max_diff(g, expected)
        assert out["masked_formulation_max_abs_diff"] < 1e-6, out
        assert out["k_equals_s_vs_no_token_drop_max_abs_diff"] < 1e-7, out
    if case["layout"] == "pre-ln":
        ones = dict(gates=[1.0] * L, keep_probs=dr.keep_probabilities(L, 0, THETA_BAR, GAMMA))
        assert ones["keep_probs"] == [1.0] * L
        a, _ = dr.train_step(model, batch, token_drop=td, layer_drop=ones)
        b, _ = dr.train_step(model, batch, token_drop=td, layer_drop=None)
        out["all_gates_step0_vs_plain_max_abs_diff"] = max_diff(a, b)
        assert out["all_gates_step0_vs_plain_max_abs_diff"] == 0.0, out
    else:
        hf, info = BertForMaskedLM.from_pretrained(
            ckpt, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
        assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys",
                                             "mismatched_keys")), info
        hf.train()
        hf.zero_grad(set_to_none=True)
        o = hf(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
               attention_mask=batch["attention_mask"], labels=batch["labels"])
        o.loss.backward()
        hf_out = {"loss": o.loss.detach()}
        hf_out.update({n: p.grad for n, p in hf.named_parameters()})
        mine, _ = dr.train_step(model, batch)
        assert set(hf_out) == set(mine), set(hf_out) ^ set(mine)
        out["plain_vs_transformers_loss"] = [mine["loss"].item(), o.loss.item()]
        out["plain_vs_transformers_max_abs_diff"] = max_diff(mine, hf_out)
        assert out["plain_vs_transformers_max_abs_diff"] < 1e-6, out
    for k, v in out.items():
        print(f"  check {k}: {v}")
    return out


# --------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------

def cli_args(case, ckpt, batch_path, out_path):
    args = ["--checkpoint", str(ckpt), "--batch", str(batch_path), "--out", str(out_path)]
    if case["token_drop"] is None:
        args.append("--no-token-drop")
    else:
        d, k = case["token_drop"]
        args += ["--drop-layer", str(d), "--kept", str(k), "--beta", str(BETA)]
    if case["gates"] is not None:
        args += ["--layer-drop", "--theta-bar", str(THETA_BAR), "--gamma", str(GAMMA)]
    return args


def make_case(case, out_root):
    name = case["name"]
    case_dir = out_root / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    ckpt = case_dir / "checkpoint"
    gen = torch.Generator().manual_seed(case["seed"])
    torch.manual_seed(case["seed"])
    config = write_checkpoint(case, ckpt, gen)
    L = case["layers"]

    batch, kinds = make_batch(gen)
    td = ld = None
    imp = None
    extra = {}
    if case["token_drop"] is not None:
        d, k = case["token_drop"]
        assert d <= L - 2
        imp = make_importance(batch, gen, k)
        extra["token_importance"] = imp
        ties = boundary_ties(batch, imp, k)
        assert ties, "no tie at the K boundary"
        assert rows_with_ties(batch, imp), "no importance tie inside a sequence"
        td = dict(drop_layer=d, kept=k, importance=imp)
    if case["gates"] is not None:
        extra["layer_gates"] = torch.tensor(case["gates"], dtype=torch.float32)
        extra["step"] = torch.tensor(case["step"], dtype=torch.int64)
        ld = dict(gates=[float(g) for g in case["gates"]],
                  keep_probs=dr.keep_probabilities(L, case["step"], THETA_BAR, GAMMA))
    batch_file = dict(batch)
    batch_file.update(extra)
    batch_path = case_dir / "batch.safetensors"
    save_file(batch_file, str(batch_path), metadata={"format": "pt"})
    batch = dr.load_batch(batch_path)

    d, k = case["token_drop"] if case["token_drop"] else (None, None)
    expected, info = dr.run(ckpt, batch_path, drop_layer=d, kept=k,
                            token_drop=td is not None, layer_drop=ld is not None,
                            beta=BETA, theta_bar=THETA_BAR, gamma=GAMMA)
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    grad_names = set(expected) - {"loss", "token_importance", "kept_positions"}
    assert grad_names == names, grad_names ^ names
    for n, t in expected.items():
        if t.is_floating_point():
            assert t.dtype == torch.float32 and bool(torch.isfinite(t).all()), n
    if ld is not None:
        for i, g in enumerate(case["gates"]):
            block = [n for n in names if n.startswith(f"bert.encoder.layer.{i}.")]
            zero = all(float(expected[n].abs().max()) == 0.0 for n in block)
            assert zero == (g == 0), (i, g, zero)
    save_file(expected, str(case_dir / "expected.safetensors"), metadata={"format": "pt"})

    # The CLI must write the same tensors.
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "out.safetensors"
        subprocess.run([sys.executable, str(REPO / "scripts" / "drop_reference.py")]
                       + cli_args(case, ckpt, batch_path, out_path), check=True,
                       stdout=subprocess.DEVNULL)
        cli = dr.load_batch(out_path)
    assert set(cli) == set(expected)
    assert all(torch.equal(cli[n], expected[n]) for n in cli), "CLI output differs"

    fd = finite_differences(ckpt, batch, td, ld, expected, kinds, case["fd"])
    checks = self_checks(case, ckpt, batch, imp, td, ld, expected)

    sel = batch["labels"] != dr.IGNORE
    changed = {}
    if td is not None:
        for t in sorted(set(batch["labels"][sel].tolist())):
            changed[str(t)] = [float(imp[t]), float(expected["token_importance"][t])]
        diff = (expected["token_importance"] != imp).nonzero().flatten().tolist()
        assert sorted(diff) == sorted(int(t) for t in changed), (diff, changed)
    counts = {kd: sum(1 for v in kinds.values() if v == kd) for kd in ("mask", "random", "kept")}
    th = dr.theta(case["step"], THETA_BAR, GAMMA) if ld else None
    rel = lambda p: str(Path(p).relative_to(REPO)) if str(p).startswith(str(REPO)) else str(p)
    ref = {
        "case": name,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "seed": case["seed"],
        "layout": case["layout"],
        "dims": dict(DIMS, num_hidden_layers=L),
        "batch": BATCH,
        "seq_len": SEQ,
        "real_lengths": LENGTHS,
        "predicted_positions": int(sel.sum()),
        "replacements": counts,
        "dtype": "float32",
        "dropout": 0.0,
        "model_sha256": sha256(ckpt / "model.safetensors"),
        "token_drop": None if td is None else {
            "drop_layer": d, "kept": k, "beta": BETA,
            "kept_positions": expected["kept_positions"].tolist(),
            "rows_with_tie_at_k_boundary": boundary_ties(batch, imp, k),
            "importance_updates": changed,
        },
        "layer_drop": None if ld is None else {
            "gates": case["gates"], "step": case["step"], "theta_bar": THETA_BAR,
            "gamma": GAMMA, "theta": th, "keep_probs": ld["keep_probs"],
        },
        "loss": info["loss"],
        "cli": ["scripts/drop_reference.py"] + [rel(a) for a in
                                                cli_args(case, ckpt, batch_path, "OUT")],
        "finite_difference_step": FD_STEP,
        "finite_difference_checks": fd,
        "self_checks": checks,
    }
    (case_dir / "reference.json").write_text(json.dumps(ref, indent=2) + "\n")
    for root, _, files in os.walk(case_dir):
        for f in files:
            os.chmod(Path(root) / f, 0o644)
    print(f"{name}: loss {info['loss']:.8f}, {int(sel.sum())} predictions {counts}")
    if td is not None:
        print(f"  kept {expected['kept_positions'].tolist()}")
    if ld is not None:
        print(f"  theta {th:.6f} keep_probs {[round(p, 6) for p in ld['keep_probs']]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "drops"))
    args = ap.parse_args()
    transformers.utils.logging.disable_progress_bar()
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"safetensors {safetensors.__version__}")
    for case in CASES:
        make_case(case, out_root)


if __name__ == "__main__":
    main()
