#!/usr/bin/env python3
"""Build dropbert's embedded default corpus and its WordPiece vocabulary from WordNet.

Source
------
The glosses (definitions) and example sentences of WordNet 3.0, as shipped in
the Debian package ``wordnet-base`` (the committed files were built from
version ``1:3.0-37``, Debian bookworm). The script reads the four database
files ``data.noun``, ``data.verb``, ``data.adj`` and ``data.adv`` of the
package (``usr/share/wordnet/``).

License
-------
WordNet 3.0 license (Princeton University): a permissive, BSD-like license
that allows use, copying, modification and distribution, including of
modified copies, without fee, provided the copyright notice, the statements
and the disclaimer appear on all copies. The script copies that text, exactly
as the package's database files carry it in their header, to
``data/wordnet/LICENSE``; ship that file with anything that embeds the corpus.

How to rebuild
--------------
On a Debian-like machine (no root needed: the package is only unpacked, not
installed)::

    cd "$(mktemp -d)" && apt-get update && apt-get download wordnet-base=1:3.0-37
    /work/venv/bin/pip install tokenizers==0.23.3     # any venv
    /work/venv/bin/python /path/to/dropbert/scripts/build_default_corpus.py \\
        --deb "$PWD"/wordnet-base_*.deb

``--deb`` unpacks the package into a temporary folder with ``dpkg-deb -x``.
Where ``dpkg-deb`` is missing, unpack the ``.deb`` some other way (it is an
``ar`` archive holding ``data.tar.xz``) and pass the unpacked root with
``--root DIR`` instead (the folder holding ``usr/``). The output folder is
``data/wordnet/`` of this repository unless ``--out DIR`` says otherwise.

What it writes (under ``data/wordnet/``)
----------------------------------------
* ``corpus.txt.gz``: the corpus, gzip-compressed deterministically (no file
  name, mtime 0, level 9, as ``gzip -n -9`` would). The plain ``corpus.txt`` is
  written first, used for training the vocabulary, and then removed.
* ``vocab.txt``: a BERT WordPiece vocabulary (one token per line, the line
  number is the id) trained on the corpus with Hugging Face ``tokenizers``'
  ``BertWordPieceTokenizer``: lowercase, strip accents, vocab_size 8192,
  min_frequency 2, special tokens ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``;
  then single characters, "##" + one character, and the longer pieces, in
  the canonical order ``train_vocab`` describes (``tokenizers`` itself numbers
  them differently from run to run).
* ``LICENSE``: the WordNet 3.0 license text (see above).
* ``README.md``: what the corpus is, the source package, counts, sizes,
  sha256 of the outputs and this rebuild command. It is generated: edit this
  script, not the README.

Corpus format
-------------
Plain ASCII text. One document per synset, in the order of the files (all
nouns, then verbs, adjectives, adverbs; within a file by byte offset, as
WordNet stores them). A document is the synset's definition on one line
followed by its example sentences, one per line; documents are separated by
exactly one blank line. Text cleaning:

* every sentence is stripped and its runs of whitespace collapsed to one space;
* the definition is the gloss text before the first quoted example (a ``"``
  that opens the gloss or follows ``;`` or ``:``, or follows ``,`` or ``)``
  outside parentheses and not after "e.g.,", see ``find_examples_start``);
  trailing ``;``, ``:`` or
  ``,`` are removed, the first alphanumeric character is upper-cased if it is a
  lowercase letter, and a ``.`` is appended unless it already ends in ``.``,
  ``!`` or ``?``;
* examples are the quoted strings after it, without their quotes
  (separated by ``;``, ``:``, ``,`` or nothing); an attribution after a
  closing quote (``"..."- Shakespeare``, ``"..." H.L.Mencken``) is dropped, a
  parenthesis there (``"an ex-directory number" (British usage)``) is kept;
  the few malformed glosses of WordNet (a missing opening or closing quote)
  are read leniently, an unbalanced ``"`` left at either end of a sentence is
  removed, and a quotation that opened an example gets its opening quote
  back (``"Now listen, friends," he began``); examples are otherwise kept as
  written (many are phrases, not full sentences, and they are not
  capitalised, nor given a final period);
* empty sentences are dropped, and a synset left with no sentence at all is
  skipped.

Running the script twice gives byte-identical outputs (checked with sha256).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "data" / "wordnet"
PACKAGE = "wordnet-base"
WORDNET_DIR = Path("usr/share/wordnet")
DATA_FILES = ["data.noun", "data.verb", "data.adj", "data.adv"]

VOCAB_SIZE = 8192
MIN_FREQUENCY = 2
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# An example starts at a double quote that opens the gloss or follows ';' or ':'.
EXAMPLE_START = re.compile(r'(?:^|[;:])\s*"')
# A "soft" start: a quote after ',' or ')' (see find_examples_start).
SOFT_START = re.compile(r'[,)]\s*"')
# An attribution without a dash after a closing quote: '"..." H.L.Mencken'.
NAME = re.compile(r"[A-Z][A-Za-z.]*(?: [A-Z][A-Za-z.]*)*")
WHITESPACE = re.compile(r"\s+")


def collapse(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()


def strip_unbalanced_quotes(text: str) -> str:
    """Remove a stray '"' at either end of a sentence with an odd number of them."""
    if text.count('"') % 2 == 1:
        if text.startswith('"'):
            text = text[1:]
        elif text.endswith('"'):
            text = text[:-1]
    return text.strip()


def clean_definition(text: str) -> str:
    text = strip_unbalanced_quotes(collapse(text).rstrip(";:, "))
    text = text.rstrip(";:, ")
    if not text:
        return ""
    for i, ch in enumerate(text):
        if ch.isalnum():
            if ch.islower():
                text = text[:i] + ch.upper() + text[i + 1:]
            break
    if text[-1] not in ".!?":
        text += "."
    return text


def clean_example(text: str) -> str:
    text = strip_unbalanced_quotes(collapse(text).rstrip(";:, ")).rstrip(";:, ")
    # A quotation at the start of an example loses its opening quote to the
    # example's own ('"on her beam-ends" means ...' reads 'on her beam-ends"
    # means ...'): when the first '"' closes something, put it back, and
    # close a quotation left open at the end ('"I know it's hard," he
    # continued, "but there is no choice"').
    q = text.find('"')
    if q > 0 and text[q - 1] != " " and (q + 1 == len(text) or text[q + 1] == " "):
        text = '"' + text
        if text.count('"') % 2 == 1:
            text += '"'
    return text


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] == " ":
        i += 1
    return i


def _example_end(rest: str, start: int) -> tuple[int, int, str]:
    """Find the end of the quoted example whose text starts at ``start``.

    Returns (end of its text, where to go on scanning, a note to append).
    The text ends at the first '"' that is followed (after spaces) by
    * the end, ';' or ':';
    * the next example's opening '"', possibly after ',', '.' or 'or';
    * an attribution: '-' or a capitalised name, up to the next ';' (dropped);
    * a parenthesis up to the next ';' or the end ('(British usage)'), kept
      as a note;
    or, when the closing quote is missing, at a ';' or ':' followed by the
    next example's opening quote; else the example runs to the end.
    """
    n = len(rest)
    i = start
    while i < n:
        ch = rest[i]
        if ch == '"':
            j = _skip_spaces(rest, i + 1)
            if j == n or rest[j] in ';:"':
                return i, j, ""
            semi = rest.find(";", j)
            semi = n if semi < 0 else semi
            if rest[j] == "-" or NAME.fullmatch(rest[j:semi].rstrip()):
                return i, semi, ""
            if rest[j] == "(" and rest[j:semi].rstrip().endswith(")"):
                return i, semi, rest[j:semi]
            if rest[j] in ",.":
                k = _skip_spaces(rest, j + 1)
                if k < n and rest[k] == '"':
                    return i, k, ""
            if rest.startswith("or", j):
                k = _skip_spaces(rest, j + 2)
                if k > j + 2 and k < n and rest[k] == '"':
                    return i, k, ""
        elif ch in ";:":
            j = _skip_spaces(rest, i + 1)
            if j < n and rest[j] == '"':
                return i, i, ""
        i += 1
    return n, n, ""


def find_examples_start(gloss: str) -> int:
    """Where the examples of a gloss start (``len(gloss)`` when it has none).

    Normally at the first quote that opens the gloss or follows ';' or ':'.
    A quote after ',' or ')' (``"restrict or confine, "I limit you to ..."``,
    ``"(of a ball) "a ball that is out of play is dead"``) starts them
    earlier, provided it is outside parentheses, does not follow "e.g.," or
    "i.e.," and its quoted text closes properly.
    """
    m = EXAMPLE_START.search(gloss)
    hard = m.start() if m else len(gloss)
    for s in SOFT_START.finditer(gloss, 0, hard):
        before = gloss[: s.start() + 1]
        if before.count("(") != before.count(")"):
            continue
        if before.rstrip(",").lower().endswith(("e.g.", "i.e.")):
            continue
        end, _, _ = _example_end(gloss, s.end())
        if end < len(gloss):
            return s.start() + 1
    return hard


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split a WordNet gloss into its definition and its example sentences."""
    gloss = gloss.strip()
    cut = find_examples_start(gloss)
    return clean_definition(gloss[:cut]), _scan_examples(gloss[cut:])


def _scan_examples(rest: str) -> list[str]:
    examples = []
    pos, n = 0, len(rest)
    while pos < n:
        while pos < n and rest[pos] in ";: ":
            pos += 1
        if pos >= n:
            break
        note = ""
        if rest[pos] == '"':
            start = pos + 1
            end, pos, note = _example_end(rest, start)
            text = rest[start:end]
        else:
            # An example missing its opening quote: up to the next ';'.
            k = rest.find(";", pos)
            end = n if k < 0 else k
            text, pos = rest[pos:end], end
        text = clean_example(text)
        if text:
            examples.append(f"{text} {collapse(note)}" if note else text)
    return examples


def read_glosses(wordnet_dir: Path):
    """Yield every synset's gloss, in file order (noun, verb, adj, adv)."""
    for name in DATA_FILES:
        with open(wordnet_dir / name, "r", encoding="ascii") as f:
            for line in f:
                if line.startswith("  "):  # license header
                    continue
                bar = line.find(" | ")
                if bar < 0:
                    raise ValueError(f"{name}: synset line without a gloss: {line[:60]!r}")
                yield line[bar + 3:]


def build_documents(wordnet_dir: Path) -> tuple[list[list[str]], dict]:
    docs = []
    counts = dict(synsets=0, definitions=0, examples=0)
    for gloss in read_glosses(wordnet_dir):
        counts["synsets"] += 1
        definition, examples = split_gloss(gloss)
        sentences = ([definition] if definition else []) + examples
        if sentences:
            docs.append(sentences)
            counts["definitions"] += bool(definition)
            counts["examples"] += len(examples)
    return docs, counts


def read_license(wordnet_dir: Path) -> str:
    """The license header of data.noun without its line numbers."""
    lines = []
    with open(wordnet_dir / "data.noun", "r", encoding="ascii") as f:
        for line in f:
            if not line.startswith("  "):
                break
            m = re.match(r"  \d+ ?(.*)$", line.rstrip("\n"))
            if m is None:
                raise ValueError(f"unexpected license header line {line!r}")
            lines.append(m.group(1).rstrip())
    return "\n".join(lines).strip("\n") + "\n"


def package_version_from_root(root: Path) -> str:
    changelog = root / "usr/share/doc" / PACKAGE / "changelog.Debian.gz"
    with gzip.open(changelog, "rt", encoding="utf-8") as f:
        first = f.readline()
    m = re.match(r"\S+ \(([^)]+)\)", first)
    if m is None:
        raise ValueError(f"cannot read the version from {changelog}")
    return m.group(1)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gzip_deterministic(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
            shutil.copyfileobj(fin, gz, 1 << 20)


def _bert_wordpiece(vocab: str | None = None):
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(
        vocab,
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=True,
        lowercase=True,
        wordpieces_prefix="##",
    )


def train_vocab(corpus: Path, out_dir: Path) -> tuple[Path, dict]:
    """Train the WordPiece vocabulary and write it in a canonical order.

    ``tokenizers`` picked the same set of tokens on every run tried (ten), but
    the ids it gives them are not stable: the "##x" pieces are numbered in hash-map
    order and merges of equal count are taken in an order that depends on
    those ids. WordPiece only uses the set (greedy longest match), so the
    script renumbers it: special tokens, single characters by code point,
    "##" + one character by code point, then the longer pieces by how often
    the trained tokenizer emits them on the corpus (most frequent first, ties
    by string). It then checks that the written vocabulary tokenizes the
    whole corpus exactly as the trained tokenizer does.
    """
    tok = _bert_wordpiece()
    tok.train(
        files=[str(corpus)],
        vocab_size=VOCAB_SIZE,
        min_frequency=MIN_FREQUENCY,
        special_tokens=SPECIAL_TOKENS,
        limit_alphabet=1000,
        wordpieces_prefix="##",
        show_progress=False,
    )
    ids = tok.get_vocab()
    by_id = sorted(ids, key=ids.__getitem__)
    if by_id[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        raise RuntimeError(f"special tokens not at ids 0..4: {by_id[:5]}")
    rest = by_id[len(SPECIAL_TOKENS):]
    chars = sorted((t for t in rest if len(t) == 1), key=ord)
    cont = sorted((t for t in rest if len(t) == 3 and t.startswith("##")), key=lambda t: ord(t[2]))
    single = set(chars) | set(cont)
    lines = [l for l in corpus.read_text(encoding="ascii").split("\n") if l]
    trained = [e.tokens for e in tok.encode_batch(lines, add_special_tokens=False)]
    counts: dict[str, int] = {}
    for toks in trained:
        for t in toks:
            counts[t] = counts.get(t, 0) + 1
    pieces = sorted((t for t in rest if t not in single), key=lambda t: (-counts.get(t, 0), t))
    order = SPECIAL_TOKENS + chars + cont + pieces
    if len(order) != len(set(order)) or set(order) != set(by_id):
        raise RuntimeError("renumbering lost or duplicated tokens")

    vocab = out_dir / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in order), encoding="utf-8")
    reloaded = _bert_wordpiece(str(vocab))
    again = [e.tokens for e in reloaded.encode_batch(lines, add_special_tokens=False)]
    if again != trained:
        raise RuntimeError("the written vocab.txt does not tokenize like the trained tokenizer")
    return vocab, dict(n_chars=len(chars), n_cont=len(cont), n_pieces=len(pieces))


def write_readme(out_dir: Path, info: dict) -> None:
    i = info
    text = f"""# WordNet default corpus

The default corpus that dropbert embeds: the definitions (glosses) and example
sentences of all {i['synsets']:,} synsets of [WordNet](https://wordnet.princeton.edu/) 3.0,
Princeton University's lexical database of English, written by its
lexicographers. Plus a BERT WordPiece vocabulary trained on it.

**Generated by `scripts/build_default_corpus.py`; do not edit by hand** (the
script's docstring documents the parsing and cleaning rules in full).

## Files

| file | what | bytes | sha256 |
|------|------|------:|--------|
| `corpus.txt.gz` | the corpus, gzip (`gzip -n -9` semantics: no name, mtime 0) | {i['gz_bytes']:,} | `{i['gz_sha256']}` |
| `vocab.txt` | WordPiece vocabulary, {i['vocab_size']:,} tokens, one per line (line number = id) | {i['vocab_bytes']:,} | `{i['vocab_sha256']}` |
| `LICENSE` | the WordNet 3.0 license, as the package's database files carry it | | |

## Source

* Debian package `{PACKAGE}`, version `{i['version']}` (architecture `all`,
  Debian's `main` archive){i['deb_line']}
* Files read: `usr/share/wordnet/data.noun`, `data.verb`, `data.adj`, `data.adv`
  (their 29-line license header is skipped).

## Format

Plain ASCII text. One document per synset, in file order (nouns, verbs,
adjectives, adverbs; within a file in WordNet's order). A document is the
definition on its first line (first letter capitalised, ending in a period),
then the synset's example sentences, one per line, written as WordNet has
them (without their quotes; many are phrases). Documents are separated by one
blank line. Attributions of quotations ("- Shakespeare") are dropped.

## Counts

| | |
|---|---:|
| documents (synsets) | {i['documents']:,} |
| sentences (lines) | {i['sentences']:,} |
| of which definitions | {i['definitions']:,} |
| of which examples | {i['examples']:,} |
| words (whitespace-separated) | {i['words']:,} |
| uncompressed bytes (`corpus.txt`) | {i['raw_bytes']:,} |
| compressed bytes (`corpus.txt.gz`) | {i['gz_bytes']:,} |
| uncompressed sha256 | `{i['raw_sha256']}` |

## Vocabulary

Trained with Hugging Face `tokenizers` {i['tokenizers_version']}
`BertWordPieceTokenizer` (lowercase, strip accents, clean text, Chinese-char
handling on; `vocab_size={VOCAB_SIZE}`, `min_frequency={MIN_FREQUENCY}`,
`limit_alphabet=1000`, prefix `##`). Special tokens: `[PAD]`=0, `[UNK]`=1,
`[CLS]`=2, `[SEP]`=3, `[MASK]`=4. Then, in a canonical order (the trainer's
own ids vary between runs; the set of tokens it picks was the same in every
run tried): {i['n_chars']} single
characters by code point, {i['n_cont']} `##` + one character by code point,
and {i['n_pieces']:,} longer pieces, most frequent on the corpus first (ties
by string). The script checks that `vocab.txt` tokenizes the whole corpus
exactly as the trained tokenizer does.

## License

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
Distributed under the WordNet 3.0 license (permissive: use, copy, modify and
distribute for any purpose without fee, provided the copyright notice, the
statements and the disclaimer appear on all copies, including modified
ones). The full text is in [`LICENSE`](LICENSE); keep it next to any copy of
the corpus, including inside the dropbert binary's distribution.
The vocabulary is derived from the corpus.

## Rebuild

```sh
cd "$(mktemp -d)" && apt-get update && apt-get download {PACKAGE}={i['version']}
/work/venv/bin/pip install tokenizers=={i['tokenizers_version']}
/work/venv/bin/python <repo>/scripts/build_default_corpus.py --deb "$PWD"/{PACKAGE}_*.deb
```

(`--root DIR` instead of `--deb` takes an already unpacked package.) Built
with Python {i['python_version']} and zlib {i['zlib_version']}; a different
zlib may compress to different (equally valid) bytes.
"""
    (out_dir / "README.md").write_text(text, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--deb", type=Path, help=f"the {PACKAGE} .deb (unpacked with dpkg-deb -x)")
    src.add_argument("--root", type=Path, help=f"an unpacked {PACKAGE} package (holds usr/)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/wordnet)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        deb_line = "."
        if args.deb is not None:
            root = Path(tmp) / "pkg"
            subprocess.run(["dpkg-deb", "-x", str(args.deb), str(root)], check=True)
            fields = subprocess.run(
                ["dpkg-deb", "-f", str(args.deb), "Package", "Version"],
                check=True, capture_output=True, text=True,
            ).stdout
            meta = dict(l.split(": ", 1) for l in fields.strip().splitlines())
            if meta.get("Package") != PACKAGE:
                raise SystemExit(f"{args.deb} is package {meta.get('Package')!r}, not {PACKAGE}")
            version = meta["Version"]
            deb_line = (
                f"; `.deb` file `{args.deb.name}`, sha256\n  `{sha256(args.deb)}`."
            )
        else:
            root = args.root
            version = package_version_from_root(root)
        wordnet_dir = root / WORDNET_DIR

        docs, counts = build_documents(wordnet_dir)
        license_text = read_license(wordnet_dir)

        out = args.out
        out.mkdir(parents=True, exist_ok=True)
        corpus = out / "corpus.txt"
        text = "\n\n".join("\n".join(d) for d in docs) + "\n"
        corpus.write_bytes(text.encode("ascii"))  # the corpus must stay ASCII
        gz = out / "corpus.txt.gz"
        gzip_deterministic(corpus, gz)
        with gzip.open(gz, "rb") as f:
            if f.read() != corpus.read_bytes():
                raise RuntimeError("gzip round trip failed")

        vocab, vocab_groups = train_vocab(corpus, out)
        raw_bytes, raw_sha = corpus.stat().st_size, sha256(corpus)
        corpus.unlink()
        (out / "LICENSE").write_text(license_text, encoding="ascii")

        import tokenizers

        info = dict(
            version=version,
            deb_line=deb_line,
            **counts,
            **vocab_groups,
            documents=len(docs),
            sentences=sum(len(d) for d in docs),
            words=sum(len(s.split()) for d in docs for s in d),
            raw_bytes=raw_bytes,
            raw_sha256=raw_sha,
            gz_bytes=gz.stat().st_size,
            gz_sha256=sha256(gz),
            vocab_size=len(vocab.read_text(encoding="utf-8").splitlines()),
            vocab_bytes=vocab.stat().st_size,
            vocab_sha256=sha256(vocab),
            tokenizers_version=tokenizers.__version__,
            python_version=".".join(map(str, sys.version_info[:3])),
            zlib_version=zlib.ZLIB_RUNTIME_VERSION,
        )
        write_readme(out, info)

    for k, v in info.items():
        if k != "deb_line":
            print(f"{k}: {v}")
    for name in ["corpus.txt.gz", "vocab.txt", "LICENSE", "README.md"]:
        print(f"sha256 {sha256(out / name)}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
