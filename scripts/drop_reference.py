#!/usr/bin/env python3
"""Plain-PyTorch reference for token dropping and progressive layer dropping.

An independent reference the Rust implementation is checked against: one MLM
training step (forward + backward) of a BERT checkpoint with optional token
dropping and/or progressive layer dropping, written out as float32 tensors.

Usage
-----
    python scripts/drop_reference.py --checkpoint DIR --batch FILE.safetensors \\
        --out FILE.safetensors [--drop-layer D --kept K] [--beta 0.995] \\
        [--theta-bar 0.5 --gamma 0.001] [--no-token-drop] [--layer-drop] \\
        [--inference]

``--drop-layer``/``--kept`` are required unless ``--no-token-drop`` is given.
The file is also a library (``make_drop_fixtures.py`` imports it).

Checkpoint
----------
``DIR/config.json``, ``DIR/model.safetensors``, ``DIR/vocab.txt``.

* Post-LN (default): exactly Hugging Face ``BertForMaskedLM`` tensor names
  (no pooler, no separate decoder weight; the decoder is tied to
  ``bert.embeddings.word_embeddings.weight``, its bias is
  ``cls.predictions.bias``).
* Pre-LN: ``config.json`` has ``"dropbert_block_layout": "pre-ln"``. Per layer
  the LayerNorms are ``bert.encoder.layer.N.PreAttentionLayerNorm`` and
  ``...PostAttentionLayerNorm`` (DeepSpeed naming; no
  ``attention.output.LayerNorm``/``output.LayerNorm``), and
  ``bert.encoder.FinalLayerNorm`` follows the last block. Block:
  ``a = x + AttnOut(PreAttentionLayerNorm(x))``,
  ``y = a + FFN(PostAttentionLayerNorm(a))``.

Embeddings (word + position + token type, LayerNorm) and the MLM head (dense,
exact erf GELU, LayerNorm, tied decoder + bias) are the same in both layouts.
The special ids ([PAD], [UNK], [CLS], [SEP], [MASK]) are looked up in
``vocab.txt`` by token string. The model is written here from scratch (no
``transformers`` modules), with module names chosen so that
``named_parameters()`` equals the checkpoint's tensor names and
``load_state_dict(strict=True)`` checks them.

Batch file
----------
``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels``: int64
[batch, seq] (label -100 = not predicted); ``token_importance`` float32
[vocab] (token dropping; if absent, an all-zero table); ``layer_gates`` float32
[layers] of 0/1 and ``step`` int64 scalar (both required with ``--layer-drop``).

Token dropping (split layer D, K kept tokens per row, L layers, D <= L-2)
------------------------------------------------------------------------
* layers ``i < D`` run on all tokens with the padding mask (additive: 0 for
  real keys, the dtype's most negative finite value for padding);
* selection per row ``b``: position ``j`` gets the key
  ``(tier, -importance[input_ids[b, j]], j)`` with tier 0 for the allow-list
  ids [UNK] [CLS] [SEP] [MASK], else 1 if ``labels[b, j] != -100``, else 3 for
  [PAD], else 2; the K smallest keys are kept, then put in ascending position
  order (plain Python ``sorted`` with a tuple key -- deliberately simple);
* split layer D: queries = ``h_D`` at the kept positions, keys/values = ``h_D``
  at all positions with the full padding mask; output ``m`` [B, K, H] at the
  kept positions only (residuals too);
* layers D+1 .. L-2: kept tokens only, mask = padding mask at the kept positions;
* last layer L-1: input = ``h_D`` with the kept rows replaced by ``m`` (dropped
  tokens carry ``h_D``); all tokens, full mask; then (Pre-LN) FinalLayerNorm
  and the MLM head. Gradients flow through the gather/scatter.
* importance update after the step (no gradient): the float32 cross-entropy
  at each predicted position; for each distinct label id ``t``:
  ``imp[t] = beta * imp[t] + (1 - beta) * mean(losses with label t)``, computed
  in float64 from the float32 values and rounded to float32 once. Other ids
  are unchanged.

Progressive layer dropping (Pre-LN only)
----------------------------------------
``theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar`` with ``t = step``;
keep probability of layer ``i`` (0-based) ``p_i = 1 - ((i + 1) / L) * (1 -
theta)``. Gate 0: the block is the identity (its parameters get zero
gradients). Gate 1 (training): both sub-layer outputs are divided by ``p_i``:
``a = x + AttnOut(PreLN(x)) / p_i``, ``y = a + FFN(PostLN(a)) / p_i``, as in
DeepSpeedExamples' Pre-LN layer-drop BERT. ``--inference``: every block runs,
no scaling. With token dropping too, the gates apply to every block index; a
gated-off split layer passes the kept rows of ``h_D`` through unchanged.

Output (all float32 except ``kept_positions``)
----------------------------------------------
* ``loss``: shape [], mean cross-entropy over the predicted positions;
* the gradient of every parameter under its checkpoint name (the tied decoder
  contribution is inside ``bert.embeddings.word_embeddings.weight``; zeros for
  parameters that got no gradient, e.g. gated-off blocks);
* with token dropping: ``token_importance`` (the updated table, [vocab]) and,
  for debugging, ``kept_positions`` (int64 [batch, K], ascending).
"""

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

IGNORE = -100
ALLOW_LIST_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")
PRE_LN = "pre-ln"
POST_LN = "post-ln"


# --------------------------------------------------------------------------
# Model (written from scratch; names follow the checkpoint conventions)
# --------------------------------------------------------------------------

class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.p_drop = c["hidden_dropout_prob"]

    def forward(self, input_ids, token_type_ids):
        seq = input_ids.shape[1]
        pos = torch.arange(seq, device=input_ids.device)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(pos)[None]
             + self.token_type_embeddings(token_type_ids))
        return F.dropout(self.LayerNorm(x), self.p_drop, self.training)


class Projections(nn.Module):  # attention.self
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)


class AttnOutput(nn.Module):  # attention.output
    def __init__(self, c, post_ln):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        if post_ln:
            self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])


class Attention(nn.Module):
    def __init__(self, c, post_ln):
        super().__init__()
        self.self = Projections(c)
        self.output = AttnOutput(c, post_ln)


class Dense(nn.Module):  # intermediate / output holder
    def __init__(self, n_in, n_out, ln=None):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        if ln is not None:
            self.LayerNorm = nn.LayerNorm(n_out, eps=ln)


class Layer(nn.Module):
    """One encoder block; ``forward(x_q, x_kv, add_mask, scale)``.

    Queries (and residuals) come from ``x_q`` [B, Q, H], keys and values from
    ``x_kv`` [B, S, H]; ``add_mask`` is the additive key mask [B, S].
    ``scale`` multiplies both sub-layer outputs (Pre-LN layer drop: 1/p_i).
    """

    def __init__(self, c, layout):
        super().__init__()
        self.layout = layout
        post = layout == POST_LN
        eps = c["layer_norm_eps"]
        self.heads = c["num_attention_heads"]
        self.p_attn = c["attention_probs_dropout_prob"]
        self.p_hidden = c["hidden_dropout_prob"]
        self.attention = Attention(c, post)
        self.intermediate = Dense(c["hidden_size"], c["intermediate_size"])
        self.output = Dense(c["intermediate_size"], c["hidden_size"], eps if post else None)
        if not post:
            self.PreAttentionLayerNorm = nn.LayerNorm(c["hidden_size"], eps=eps)
            self.PostAttentionLayerNorm = nn.LayerNorm(c["hidden_size"], eps=eps)

    def self_attention(self, x_q, x_kv, add_mask):
        proj = self.attention.self
        b, nq, hid = x_q.shape
        nk = x_kv.shape[1]
        dh = hid // self.heads
        q = proj.query(x_q).view(b, nq, self.heads, dh).transpose(1, 2)
        k = proj.key(x_kv).view(b, nk, self.heads, dh).transpose(1, 2)
        v = proj.value(x_kv).view(b, nk, self.heads, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + add_mask[:, None, None, :]
        probs = F.dropout(torch.softmax(scores, dim=-1), self.p_attn, self.training)
        ctx = (probs @ v).transpose(1, 2).reshape(b, nq, hid)
        return F.dropout(self.attention.output.dense(ctx), self.p_hidden, self.training)

    def ffn(self, a):
        inter = F.gelu(self.intermediate.dense(a))  # exact erf GELU
        return F.dropout(self.output.dense(inter), self.p_hidden, self.training)

    def forward(self, x_q, x_kv, add_mask, scale=1.0):
        if self.layout == POST_LN:
            assert scale == 1.0
            a = self.attention.output.LayerNorm(x_q + self.self_attention(x_q, x_kv, add_mask))
            return self.output.LayerNorm(a + self.ffn(a))
        ln = self.PreAttentionLayerNorm
        a = x_q + self.self_attention(ln(x_q), ln(x_kv), add_mask) * scale
        return a + self.ffn(self.PostAttentionLayerNorm(a)) * scale


class Encoder(nn.Module):
    def __init__(self, c, layout):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c, layout) for _ in range(c["num_hidden_layers"])])
        if layout == PRE_LN:
            self.FinalLayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])


class Bert(nn.Module):
    def __init__(self, c, layout):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c, layout)


class Transform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])


class Predictions(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = Transform(c)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))


class Cls(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = Predictions(c)


class DropBertMLM(nn.Module):
    """BERT masked LM with optional token dropping / progressive layer dropping."""

    def __init__(self, config, special_ids):
        super().__init__()
        c = config
        assert c.get("hidden_act", "gelu") == "gelu", "only exact (erf) gelu is supported"
        assert c.get("tie_word_embeddings", True), "decoder must be tied to the word embeddings"
        assert c.get("position_embedding_type", "absolute") == "absolute"
        self.config = c
        self.layout = c.get("dropbert_block_layout", POST_LN)
        assert self.layout in (PRE_LN, POST_LN), self.layout
        self.num_layers = c["num_hidden_layers"]
        self.special = special_ids
        self.bert = Bert(c, self.layout)
        self.cls = Cls(c)

    # ---- pieces -----------------------------------------------------------
    def additive_mask(self, attention_mask, dtype):
        return (1.0 - attention_mask.to(dtype)) * torch.finfo(dtype).min

    def mlm_logits(self, h):
        t = self.cls.predictions.transform
        h = t.LayerNorm(F.gelu(t.dense(h)))
        return h @ self.bert.embeddings.word_embeddings.weight.t() + self.cls.predictions.bias

    def block(self, i, x_q, x_kv, add_mask, gates, keep_probs):
        """Block i, honouring the layer-drop gate (identity when off)."""
        if gates is not None and gates[i] == 0:
            return x_q
        scale = 1.0 if keep_probs is None else 1.0 / keep_probs[i]
        return self.bert.encoder.layer[i](x_q, x_kv, add_mask, scale)

    # ---- forward ----------------------------------------------------------
    def forward(self, batch, token_drop=None, layer_drop=None):
        """Return (logits [B, S, V], kept positions [B, K] or None).

        token_drop: None or dict(drop_layer=D, kept=K, importance=float32 [V]).
        layer_drop: None or dict(gates=list of 0/1, keep_probs=list of p_i)
                    (training-mode PLD; pass None for plain / inference).
        """
        ids, types = batch["input_ids"], batch["token_type_ids"]
        h = self.bert.embeddings(ids, types)
        full_mask = self.additive_mask(batch["attention_mask"], h.dtype)
        L = self.num_layers
        gates = keep_probs = None
        if layer_drop is not None:
            assert self.layout == PRE_LN, "progressive layer dropping is Pre-LN only"
            gates, keep_probs = layer_drop["gates"], layer_drop["keep_probs"]
            assert len(gates) == L and len(keep_probs) == L

        kept = None
        if token_drop is None:
            for i in range(L):
                h = self.block(i, h, h, full_mask, gates, keep_probs)
        else:
            D, K = token_drop["drop_layer"], token_drop["kept"]
            assert 0 <= D <= L - 2, f"drop layer {D} must be <= layers - 2 = {L - 2}"
            for i in range(D):
                h = self.block(i, h, h, full_mask, gates, keep_probs)
            h_d = h
            kept = select_kept(ids, batch["labels"], token_drop["importance"], K, self.special)
            idx = kept[:, :, None].expand(-1, -1, h_d.shape[-1])
            x_kept = torch.gather(h_d, 1, idx)
            m = self.block(D, x_kept, h_d, full_mask, gates, keep_probs)
            kept_mask = torch.gather(full_mask, 1, kept)
            for i in range(D + 1, L - 1):
                m = self.block(i, m, m, kept_mask, gates, keep_probs)
            h = torch.scatter(h_d, 1, idx, m)  # dropped rows keep h_D
            h = self.block(L - 1, h, h, full_mask, gates, keep_probs)
        if self.layout == PRE_LN:
            h = self.bert.encoder.FinalLayerNorm(h)
        return self.mlm_logits(h), kept


# --------------------------------------------------------------------------
# Token selection, importance update, layer-drop schedule
# --------------------------------------------------------------------------

def select_kept(input_ids, labels, importance, k, special):
    """Kept positions [B, K] (ascending), by the tuple key (tier, -score, j)."""
    allow = {special[t] for t in ALLOW_LIST_TOKENS}
    pad = special["[PAD]"]
    ids = input_ids.tolist()
    labs = labels.tolist()
    imp = importance.tolist()  # float32 values, exact as Python floats
    seq = len(ids[0])
    assert 1 <= k <= seq, (k, seq)
    rows = []
    for row_ids, row_labels in zip(ids, labs):
        keys = []
        for j, (tok, lab) in enumerate(zip(row_ids, row_labels)):
            if tok in allow:
                tier = 0
            elif lab != IGNORE:
                tier = 1
            elif tok == pad:
                tier = 3
            else:
                tier = 2
            keys.append((tier, -imp[tok], j))
        chosen = sorted(keys)[:k]
        rows.append(sorted(key[2] for key in chosen))
    return torch.tensor(rows, dtype=torch.int64, device=input_ids.device)


def per_token_losses(logits, labels):
    sel = labels != IGNORE
    return (F.cross_entropy(logits[sel].float(), labels[sel], reduction="none"),
            labels[sel])


def update_importance(importance, losses, targets, beta):
    """New float32 table: EMA towards the mean loss of each predicted label id."""
    new = importance.clone()
    losses = losses.detach().float().tolist()
    targets = targets.tolist()
    for t in sorted(set(targets)):
        vals = [l for l, tt in zip(losses, targets) if tt == t]
        mean = sum(vals) / len(vals)
        old = float(importance[t])
        new[t] = beta * old + (1.0 - beta) * mean  # rounded to float32 once
    return new


def theta(step, theta_bar, gamma):
    return (1.0 - theta_bar) * math.exp(-gamma * step) + theta_bar


def keep_probabilities(num_layers, step, theta_bar, gamma):
    th = theta(step, theta_bar, gamma)
    return [1.0 - ((i + 1) / num_layers) * (1.0 - th) for i in range(num_layers)]


# --------------------------------------------------------------------------
# Loading and the training step
# --------------------------------------------------------------------------

def read_special_ids(vocab_path):
    tokens = Path(vocab_path).read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    index = {}
    for i, t in enumerate(tokens):
        index.setdefault(t, i)
    out = {}
    for t in ("[PAD]",) + ALLOW_LIST_TOKENS:
        assert t in index, f"{t} missing from {vocab_path}"
        out[t] = index[t]
    return out


def load_model(checkpoint_dir, dtype=torch.float32):
    d = Path(checkpoint_dir)
    config = json.loads((d / "config.json").read_text())
    special = read_special_ids(d / "vocab.txt")
    model = DropBertMLM(config, special)
    state = load_file(str(d / "model.safetensors"))
    model.load_state_dict(state, strict=True)  # names must match exactly
    model.to(dtype)
    model.train()
    return model


def load_batch(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def train_step(model, batch, *, token_drop=None, layer_drop=None, beta=0.995):
    """One forward + backward. token_drop: None or dict(drop_layer, kept, importance).
    layer_drop: None or dict(gates, keep_probs). Returns (outputs dict, info dict)."""
    model.zero_grad(set_to_none=True)
    logits, kept = model(batch, token_drop=token_drop, layer_drop=layer_drop)
    labels = batch["labels"]
    sel = labels != IGNORE
    assert int(sel.sum()) > 0, "no predicted positions"
    loss = F.cross_entropy(logits[sel], labels[sel])
    loss.backward()
    out = {"loss": loss.detach().float().reshape(()).contiguous()}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[name] = g.detach().float().contiguous().clone()
    info = {"loss": loss.item(), "kept": kept}
    if token_drop is not None:
        losses, targets = per_token_losses(logits.detach(), labels)
        out["token_importance"] = update_importance(
            token_drop["importance"], losses, targets, beta).contiguous()
        out["kept_positions"] = kept.contiguous()
    return out, info


def run(checkpoint, batch_path, *, drop_layer=None, kept=None, token_drop=True,
        layer_drop=False, beta=0.995, theta_bar=0.5, gamma=0.001, inference=False,
        dtype=torch.float32):
    """Library entry used by the CLI and the fixture generator."""
    model = load_model(checkpoint, dtype)
    batch = load_batch(batch_path)
    td = None
    if token_drop:
        if drop_layer is None or kept is None:
            raise SystemExit("token dropping needs --drop-layer and --kept (or --no-token-drop)")
        imp = batch.get("token_importance")
        if imp is None:
            imp = torch.zeros(model.config["vocab_size"], dtype=torch.float32)
        assert imp.dtype == torch.float32 and imp.shape == (model.config["vocab_size"],)
        td = dict(drop_layer=drop_layer, kept=kept, importance=imp)
    ld = None
    if layer_drop and not inference:
        if "layer_gates" not in batch or "step" not in batch:
            raise SystemExit("--layer-drop needs layer_gates and step in the batch file")
        gates = [float(g) for g in batch["layer_gates"].tolist()]
        assert all(g in (0.0, 1.0) for g in gates), gates
        probs = keep_probabilities(model.num_layers, int(batch["step"]), theta_bar, gamma)
        ld = dict(gates=gates, keep_probs=probs)
    return train_step(model, batch, token_drop=td, layer_drop=ld, beta=beta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--drop-layer", type=int)
    ap.add_argument("--kept", type=int)
    ap.add_argument("--beta", type=float, default=0.995)
    ap.add_argument("--theta-bar", type=float, default=0.5)
    ap.add_argument("--gamma", type=float, default=0.001)
    ap.add_argument("--no-token-drop", action="store_true")
    ap.add_argument("--layer-drop", action="store_true")
    ap.add_argument("--inference", action="store_true",
                    help="layer drop in inference mode: every block, no 1/p scaling")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    out, info = run(args.checkpoint, args.batch, drop_layer=args.drop_layer, kept=args.kept,
                    token_drop=not args.no_token_drop, layer_drop=args.layer_drop,
                    beta=args.beta, theta_bar=args.theta_bar, gamma=args.gamma,
                    inference=args.inference)
    save_file(out, args.out, metadata={"format": "pt"})
    print(f"loss {info['loss']:.8f}; wrote {len(out)} tensors to {args.out}")


if __name__ == "__main__":
    main()
