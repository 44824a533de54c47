#!/usr/bin/env python3
"""Write the expected output of Hugging Face's slow (pure Python) BertTokenizer.

What it makes
-------------
``tests/fixtures/tokenizer/expected.json``: for every text below, tokenized with
the vocabulary ``tests/fixtures/vocab/bert-base-uncased.txt`` both with
``do_lower_case=True`` and ``do_lower_case=False``, and for each of those at
``seq_len`` 16 and 64, one case holding

* ``text``, ``lowercase``, ``seq_len``;
* ``tokens``: ``convert_tokens_to_ids(tokenize(text))``, the WordPiece ids
  without special tokens;
* ``input_ids``, ``attention_mask``, ``token_type_ids``: ``tokenizer(text,
  max_length=seq_len, truncation=True, padding="max_length")``.

The file also records the ``transformers`` version and Python's
``unicodedata.unidata_version``: the slow tokenizer classifies characters
(control, punctuation, accents, unassigned) with the Unicode tables of the
Python that runs it, so the Rust tokenizer pins tables of the same Unicode
version and the parity test checks that the fixture agrees.

With ``--exhaustive PATH`` it instead writes a large JSON file (not committed,
about 150 MB) with the ids of ``"a" + c + "b"`` and ``"A" + c`` for every Unicode
scalar value ``c``, both lower-casing settings, plus every canonical
composition pair. ``cargo test --test tokenizer_parity -- --ignored`` with
``DROPBERT_TOKENIZER_EXHAUSTIVE=PATH`` compares all of them.

How to run
----------
Needs ``transformers`` (4.x or 5.x; with 5.x the slow tokenizer is
``BertTokenizerLegacy``, with 4.x it is ``BertTokenizer``)::

    python scripts/make_tokenizer_fixtures.py
    python scripts/make_tokenizer_fixtures.py --exhaustive /tmp/tokenizer_exhaustive.json
"""

import argparse
import json
import random
import sys
import unicodedata
from pathlib import Path

import transformers

try:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBertTokenizer
except ImportError:
    from transformers import BertTokenizer as SlowBertTokenizer

ROOT = Path(__file__).resolve().parent.parent
VOCAB = ROOT / "tests" / "fixtures" / "vocab" / "bert-base-uncased.txt"
OUT = ROOT / "tests" / "fixtures" / "tokenizer" / "expected.json"
SEQ_LENS = (16, 64)

LONG_TEXT = (
    "BERT, or Bidirectional Encoder Representations from Transformers, is a language model "
    "introduced in October 2018 by researchers at Google. It learned by self-supervised learning "
    "to represent text as a sequence of vectors. It had the transformer encoder architecture. "
    "It was notable for its dramatic improvement over previous state-of-the-art models, and as "
    "an early example of a large language model."
)

TEXTS = [
    # empty and whitespace only
    "",
    " ",
    "   \t\n\r  ",
    "\u00a0\u2002\u3000\u2028\u2029",
    # plain English, case
    "Hello, World!",
    "HELLO WORLD",
    "The Quick Brown Fox Jumps Over The Lazy Dog.",
    "unaffable",
    "hello",
    # accents, precomposed and combining
    "Café naïve résumé Ångström",
    "Crème brûlée à la française",
    "e\u0301cole \u00e9cole",
    "a\u0301\u0327 o\u0308\u0304",
    "\u212b \u037e \u2126",
    "Tiếng Việt có dấu",
    "\u0301\u0302 leading combining marks",
    # CJK and other East Asian scripts
    "我爱北京天安门",
    "日本語のテキストです。",
    "한국어 텍스트",
    "\uf900\ufa0e \U00020000\U0002a700 \U0002f800 \u4e00x\u9fff",
    "mixed中文and English混合",
    # emoji and symbols
    "I love 🤗 and 👍🏽 and 👨\u200d👩\u200d👧!",
    "∑ ≤ ± × ÷ √ ∞ € £ ¥ © ® ™",
    "½ ² ① Ⅻ ＡＢＣ１２３ ﬁne",
    # punctuation
    "!!!???...",
    "a--b a---b a...b",
    "$100.00 and 50% off #1 @home",
    "don't won't it's O'Neil's",
    "C++ & C# | ^`~\\ {x} [y] <z>",
    "«quoted» “smart quotes” ‘single’ — em dash – en dash",
    "¿Qué? ¡Hola! § ¶ † ‡ • ‰ ′ ″",
    "e-mail self-supervised state-of-the-art",
    "https://example.com/path?q=1&r=2#frag user@example.com",
    'fn main() { println!("hi"); }',
    "##ing ##s # ## ### hashtag #nlp",
    "_under_score_ and ___",
    # control and invisible characters
    "a\x00b\x01c\x7fd\ufffde\u200bf",
    "tab\tnew\nline\rcr end",
    "vertical\x0btab form\x0cfeed",
    "soft\u00adhyphen zero\u200dwidth bom\ufeffmark",
    "unassigned\u0378char private\ue000use",
    "\x1c\x1d\x1e\x1f\x85 separators",
    "rtl\u200fmark ltr\u200emark",
    # long words
    "a" * 100,
    "a" * 101,
    "b" * 150 + " short",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "ab" * 50 + " " + "ab" * 51,
    "Antidisestablishmentarianism",
    # special tokens inside text
    "The capital of France is [MASK].",
    "[MASK][MASK] [MASK]",
    "foo[MASK]bar",
    "[mask] is lowercase and [Mask] is mixed",
    "[CLS] and [SEP] and [PAD] and [UNK] in text",
    "[MA\x00SK] built by cleaning",
    "x[MA\x00SK]y",
    "[ MASK ] [MASK [MASK]] [[MASK]",
    "[SEP]",
    "[UNK][PAD]",
    # upper case and case folding
    "ÀÉÎÕÜ ÇÑ",
    "İstanbul ISTANBUL",
    "ΟΔΟΣ ΟΔΟΣ. ΣΑ Σ ΑΣΑ",
    "Straße STRASSE ß",
    "Ǆemal ǅemal ǆemal",
    # numbers
    "1234567890 3.14159 1,000,000 -42 +7 1e10",
    "2018-10-11 12:34:56 v1.2.3",
    # mixed scripts
    "Привет мир, как дела?",
    "مرحبا بالعالم",
    "שָׁלוֹם עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Ελληνικά γλώσσα",
    "ქართული ენა",
    "Hello Привет 你好 مرحبا नमस्ते",
    # truncation
    LONG_TEXT,
    LONG_TEXT.upper(),
    " ".join(["word"] * 70),
]

# Characters drawn for the seeded random strings: a bit of everything above.
POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" \t\n\r.,;:!?'\"()[]{}<>-_#@$%^&*+=/\\|`~")
    + list("éèêëÉàÂçñÑöÖüßøÅæœ")
    + ["\u0301", "\u0308", "\u0327", "\u00a0", "\u3000", "\u200b", "\u200d", "\x00", "\x07", "\ufffd"]
    + list("中文日本語한국어Привет؟مرحبا€£¥©…—“”«»¡¿")
    + ["🤗", "👍", "🏽", "\U00020000", "\uf900"]
    + ["[MASK]", "[SEP]", "[CLS]", "[PAD]", "[UNK]", "##", "un", "aff", "able"]
)


def slow_tokenizer(lowercase):
    tokenizer = SlowBertTokenizer(str(VOCAB), do_lower_case=lowercase)
    if getattr(tokenizer, "is_fast", False):
        sys.exit("need the slow (pure Python) BertTokenizer, got a fast one")
    return tokenizer


def random_texts(count, seed=20240611):
    rng = random.Random(seed)
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(1, 40))) for _ in range(count)]


def make_fixtures():
    cases = []
    for lowercase in (True, False):
        tokenizer = slow_tokenizer(lowercase)
        for text in TEXTS + random_texts(100):
            tokens = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
            for seq_len in SEQ_LENS:
                encoded = tokenizer(
                    text,
                    max_length=seq_len,
                    truncation=True,
                    padding="max_length",
                    return_token_type_ids=True,
                    return_attention_mask=True,
                )
                cases.append(
                    {
                        "text": text,
                        "lowercase": lowercase,
                        "seq_len": seq_len,
                        "tokens": tokens,
                        "input_ids": encoded["input_ids"],
                        "attention_mask": encoded["attention_mask"],
                        "token_type_ids": encoded["token_type_ids"],
                    }
                )
    document = {
        "generator": "scripts/make_tokenizer_fixtures.py",
        "tokenizer_class": SlowBertTokenizer.__name__,
        "transformers_version": transformers.__version__,
        "unicode_version": unicodedata.unidata_version,
        "vocab": str(VOCAB.relative_to(ROOT)),
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as out:
        json.dump(document, out, ensure_ascii=True, indent=None, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}")


def make_exhaustive(path):
    scalars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    texts = []
    for c in scalars:
        texts.append("a" + c + "b")
        texts.append("A" + c)
    for c in scalars:
        decomposed = unicodedata.normalize("NFD", c)
        if decomposed != c and len(decomposed) >= 2:
            texts.append("x" + decomposed + "y")
    cases = []
    for lowercase in (True, False):
        tokenizer = slow_tokenizer(lowercase)
        for text in texts:
            cases.append([text, lowercase, tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))])
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"unicode_version": unicodedata.unidata_version, "cases": cases}, out, ensure_ascii=True)
    print(f"wrote {len(cases)} cases to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exhaustive", metavar="PATH", help="write the every-character comparison file to PATH")
    args = parser.parse_args()
    if args.exhaustive:
        make_exhaustive(args.exhaustive)
    else:
        make_fixtures()


if __name__ == "__main__":
    main()
