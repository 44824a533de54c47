//! WordPiece tokenization identical to Hugging Face `BertTokenizer`.
//!
//! The reference is the slow (pure Python) tokenizer (`BertTokenizerLegacy` in `transformers`
//! 5, `BertTokenizer` in 4) with default settings. It classifies characters with the Unicode
//! tables of the Python running it; this module uses Unicode 14.0 tables, those of Python 3.11,
//! which generated `tests/fixtures/tokenizer/expected.json`. Characters first assigned after
//! Unicode 14.0 are therefore dropped as unassigned, as Python 3.11 drops them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::UnicodeNormalization;

use crate::{DropbertError, Result};

const PAD: &str = "[PAD]";
const UNK: &str = "[UNK]";
const CLS: &str = "[CLS]";
const SEP: &str = "[SEP]";
const MASK: &str = "[MASK]";
const SPECIAL_TOKENS: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];
const CONTINUATION_PREFIX: &str = "##";
const MAX_WORD_CHARS: usize = 100;

/// Ids of the special tokens every BERT vocabulary must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokenIds {
    pub pad: u32,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
}

impl SpecialTokenIds {
    /// Their ids in Google's BERT uncased vocabulary (and the fixtures').
    pub const BERT_UNCASED: Self = Self {
        pad: 0,
        unk: 100,
        cls: 101,
        sep: 102,
        mask: 103,
    };

    /// Ids that exist in a vocabulary of `vocab_size` tokens, for runs on random ids (benchmarks,
    /// cost reports): BERT's where the vocabulary is big enough, else the first five.
    pub fn for_random_ids(vocab_size: usize) -> Self {
        if vocab_size > Self::BERT_UNCASED.mask as usize {
            Self::BERT_UNCASED
        } else {
            Self {
                pad: 0,
                unk: 1,
                cls: 2,
                sep: 3,
                mask: 4,
            }
        }
    }
}

/// Model inputs for one text; every field is exactly `seq_len` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub token_type_ids: Vec<u32>,
}

/// A BERT WordPiece tokenizer over a fixed vocabulary.
#[derive(Debug, Clone)]
pub struct WordPieceTokenizer {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    /// `##`-prefixed tokens keyed without the prefix, so word continuations are looked up
    /// without building a new string per candidate.
    continuations: HashMap<String, u32>,
    longest_token: usize,
    longest_continuation: usize,
    lowercase: bool,
    special: SpecialTokenIds,
}

impl WordPieceTokenizer {
    /// Reads a `vocab.txt` (one token per line, the line number is the id).
    pub fn from_vocab_file(path: &Path, lowercase: bool) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DropbertError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| DropbertError::Vocabulary {
            path: path.to_path_buf(),
            message: format!("not valid UTF-8: {e}"),
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Self::build(split_lines(text), lowercase, path)
    }

    /// Reads `<dir>/vocab.txt`; lower-casing from `<dir>/tokenizer_config.json` key
    /// `do_lower_case` if that file exists, else true (BertTokenizer's default).
    ///
    /// Settings of that file this tokenizer cannot honour (`strip_accents` disagreeing with
    /// `do_lower_case`, `tokenize_chinese_chars` or `do_basic_tokenize` false, a `never_split`
    /// list, special tokens other than BERT's) are an `Unsupported` error rather than a
    /// silently different tokenization.
    pub fn from_checkpoint_dir(dir: &Path) -> Result<Self> {
        let config_path = dir.join("tokenizer_config.json");
        let lowercase = if config_path.is_file() {
            read_lowercase_setting(&config_path)?
        } else {
            true
        };
        Self::from_vocab_file(&dir.join("vocab.txt"), lowercase)
    }

    /// Builds a tokenizer from tokens in id order.
    pub fn from_tokens(tokens: Vec<String>, lowercase: bool) -> Result<Self> {
        Self::build(tokens, lowercase, Path::new("<in-memory vocabulary>"))
    }

    fn build(tokens: Vec<String>, lowercase: bool, source: &Path) -> Result<Self> {
        let vocab_error = |message: String| DropbertError::Vocabulary {
            path: source.to_path_buf(),
            message,
        };
        if tokens.is_empty() {
            return Err(vocab_error("the vocabulary is empty".into()));
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(vocab_error(format!(
                "{} tokens do not fit u32 ids",
                tokens.len()
            )));
        }
        if let Some(id) = tokens.iter().position(|t| t.contains(['\n', '\r'])) {
            return Err(vocab_error(format!(
                "token {id} contains a line break, which vocab.txt cannot hold"
            )));
        }
        let mut ids = HashMap::with_capacity(tokens.len());
        let mut continuations = HashMap::new();
        // Inserting in id order lets a repeated token map to its last id, as HF's dict does.
        for (id, token) in tokens.iter().enumerate() {
            ids.insert(token.clone(), id as u32);
            if let Some(rest) = token.strip_prefix(CONTINUATION_PREFIX) {
                continuations.insert(rest.to_string(), id as u32);
            }
        }
        let special_id = |token: &str| {
            ids.get(token).copied().ok_or_else(|| {
                vocab_error(format!(
                    "special token {token} is missing from the vocabulary"
                ))
            })
        };
        let special = SpecialTokenIds {
            pad: special_id(PAD)?,
            unk: special_id(UNK)?,
            cls: special_id(CLS)?,
            sep: special_id(SEP)?,
            mask: special_id(MASK)?,
        };
        let longest_token = ids.keys().map(String::len).max().unwrap_or(0);
        let longest_continuation = continuations.keys().map(String::len).max().unwrap_or(0);
        Ok(Self {
            tokens,
            ids,
            continuations,
            longest_token,
            longest_continuation,
            lowercase,
            special,
        })
    }

    /// Number of ids, i.e. lines of the vocabulary file (the embedding table's row count).
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    pub fn special_ids(&self) -> SpecialTokenIds {
        self.special
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// WordPiece ids of `text`, without special tokens.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        // HF cuts special tokens out of the raw text before any cleaning or lower-casing.
        let mut rest = text;
        while let Some((start, token)) = find_special_token(rest) {
            self.tokenize_segment(&rest[..start], &mut ids);
            ids.push(self.ids[token]);
            rest = &rest[start + token.len()..];
        }
        self.tokenize_segment(rest, &mut ids);
        ids
    }

    /// `[CLS] tokens [SEP]`, truncated to `seq_len` (keeping [SEP] last, as HF truncation=True
    /// does), padded with [PAD] to `seq_len`.
    ///
    /// # Panics
    /// If `seq_len < 2`: there is no room for [CLS] and [SEP].
    pub fn encode(&self, text: &str, seq_len: usize) -> Encoding {
        assert!(
            seq_len >= 2,
            "seq_len {seq_len} cannot hold [CLS] and [SEP]"
        );
        let tokens = self.tokenize(text);
        let mut input_ids = Vec::with_capacity(seq_len);
        input_ids.push(self.special.cls);
        input_ids.extend(tokens.iter().take(seq_len - 2));
        input_ids.push(self.special.sep);
        let used = input_ids.len();
        input_ids.resize(seq_len, self.special.pad);
        let attention_mask = (0..seq_len).map(|i| u32::from(i < used)).collect();
        Encoding {
            input_ids,
            attention_mask,
            token_type_ids: vec![0; seq_len],
        }
    }

    /// Writes the vocabulary one token per line (vocab.txt format).
    pub fn save_vocab(&self, path: &Path) -> Result<()> {
        let mut text = String::with_capacity(self.tokens.iter().map(|t| t.len() + 1).sum());
        for token in &self.tokens {
            text.push_str(token);
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| DropbertError::io(path, e))
    }

    /// HF's `BasicTokenizer` followed by WordPiece, for text holding no literal special token.
    fn tokenize_segment(&self, text: &str, ids: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || is_control(c) {
                continue;
            }
            if is_bert_whitespace(c) {
                cleaned.push(' ');
            } else if is_cjk_ideograph(c) {
                cleaned.push(' ');
                cleaned.push(c);
                cleaned.push(' ');
            } else {
                cleaned.push(c);
            }
        }
        let normalized: String = cleaned.nfc().collect();
        for word in normalized.split(is_python_space).filter(|w| !w.is_empty()) {
            // A special token that only appears after cleaning (e.g. "[MA\0SK]") is kept whole.
            if SPECIAL_TOKENS.contains(&word) {
                self.word_piece(word, ids);
                continue;
            }
            let folded;
            let word = if self.lowercase {
                folded = strip_accents(&word.to_lowercase());
                folded.as_str()
            } else {
                word
            };
            let mut piece_start = 0;
            for (i, c) in word.char_indices() {
                if is_punctuation(c) {
                    if piece_start < i {
                        self.word_piece(&word[piece_start..i], ids);
                    }
                    let end = i + c.len_utf8();
                    self.word_piece(&word[i..end], ids);
                    piece_start = end;
                }
            }
            if piece_start < word.len() {
                self.word_piece(&word[piece_start..], ids);
            }
        }
    }

    /// Greedy longest-match-first WordPiece of one word; a word with any unmatchable rest, or
    /// longer than 100 characters, becomes a single [UNK].
    fn word_piece(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().nth(MAX_WORD_CHARS).is_some() {
            ids.push(self.special.unk);
            return;
        }
        let first_piece = ids.len();
        let mut start = 0;
        while start < word.len() {
            let (table, longest) = if start == 0 {
                (&self.ids, self.longest_token)
            } else {
                (&self.continuations, self.longest_continuation)
            };
            let mut end = floor_char_boundary(word, (start + longest).min(word.len()));
            let found = loop {
                if end <= start {
                    break None;
                }
                if let Some(&id) = table.get(&word[start..end]) {
                    break Some(id);
                }
                end = floor_char_boundary(word, end - 1);
            };
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(first_piece);
                    ids.push(self.special.unk);
                    return;
                }
            }
        }
    }
}

/// Python's universal-newline `readlines()` with the terminators removed.
fn split_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\r', '\n']) {
            Some(i) => {
                lines.push(rest[..i].to_string());
                let terminator = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + terminator..];
            }
            None => {
                lines.push(rest.to_string());
                break;
            }
        }
    }
    lines
}

fn read_lowercase_setting(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|e| DropbertError::io(path, e))?;
    let json_error = |message: String| DropbertError::Json {
        path: PathBuf::from(path),
        message,
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| json_error(e.to_string()))?;
    let config = config
        .as_object()
        .ok_or_else(|| json_error("expected a JSON object".into()))?;
    let flag = |key: &str| match config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(json_error(format!(
            "{key} must be true or false, found {other}"
        ))),
    };
    let lowercase = flag("do_lower_case")?.unwrap_or(true);
    let unsupported = |key: &'static str, found: String, expected: &str| {
        Err(DropbertError::Unsupported {
            key,
            found,
            expected: expected.to_string(),
        })
    };
    if let Some(strip) = flag("strip_accents")? {
        if strip != lowercase {
            return unsupported(
                "strip_accents",
                strip.to_string(),
                "null or the value of do_lower_case",
            );
        }
    }
    for key in ["tokenize_chinese_chars", "do_basic_tokenize"] {
        if flag(key)? == Some(false) {
            return unsupported(key, "false".into(), "true");
        }
    }
    match config.get("never_split") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Array(list)) if list.is_empty() => {}
        Some(other) => return unsupported("never_split", other.to_string(), "null"),
    }
    for (key, default) in [
        ("pad_token", PAD),
        ("unk_token", UNK),
        ("cls_token", CLS),
        ("sep_token", SEP),
        ("mask_token", MASK),
    ] {
        let Some(value) = config.get(key) else {
            continue;
        };
        // transformers writes special tokens either as strings or as serialized AddedTokens.
        let content = value
            .as_str()
            .or_else(|| value.get("content").and_then(|c| c.as_str()));
        if content != Some(default) {
            return unsupported(key, value.to_string(), default);
        }
    }
    Ok(lowercase)
}

fn find_special_token(text: &str) -> Option<(usize, &'static str)> {
    text.match_indices('[').find_map(|(i, _)| {
        SPECIAL_TOKENS
            .iter()
            .find(|token| text[i..].starts_with(**token))
            .map(|token| (i, *token))
    })
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// HF's `_is_control`: any `C*` category (which includes unassigned code points), except the
/// tab and line breaks that count as whitespace.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

/// HF's `_is_whitespace`.
fn is_bert_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
        || get_general_category(c) == GeneralCategory::SpaceSeparator
}

/// Python's `str.isspace`, which `str.split()` splits on.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}')
}

/// HF's `_is_punctuation`: every non-alphanumeric printable ASCII character, plus `P*`.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii_graphic() && !c.is_ascii_alphanumeric() {
        return true;
    }
    matches!(
        get_general_category(c),
        GeneralCategory::ConnectorPunctuation
            | GeneralCategory::DashPunctuation
            | GeneralCategory::OpenPunctuation
            | GeneralCategory::ClosePunctuation
            | GeneralCategory::InitialPunctuation
            | GeneralCategory::FinalPunctuation
            | GeneralCategory::OtherPunctuation
    )
}

/// HF's `_is_chinese_char`: the CJK Unified Ideographs blocks and their extensions A–E plus
/// the compatibility ideographs, not Hangul, kana or later extensions.
fn is_cjk_ideograph(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

fn strip_accents(text: &str) -> String {
    text.nfd()
        .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(extra: &[&str]) -> Vec<String> {
        SPECIAL_TOKENS
            .iter()
            .chain(extra)
            .map(|t| t.to_string())
            .collect()
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dropbert-tokenizer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_special_token_is_named() {
        for missing in SPECIAL_TOKENS {
            let tokens: Vec<String> = vocab(&["hello"])
                .into_iter()
                .filter(|t| t != missing)
                .collect();
            match WordPieceTokenizer::from_tokens(tokens, true) {
                Err(DropbertError::Vocabulary { message, .. }) => {
                    assert!(message.contains(missing), "{message}")
                }
                other => panic!("expected a Vocabulary error for {missing}, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_special_token_in_file_names_file_and_token() {
        let dir = scratch_dir("missing");
        let path = dir.join("vocab.txt");
        std::fs::write(&path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n").unwrap();
        let err = WordPieceTokenizer::from_vocab_file(&path, true).unwrap_err();
        match &err {
            DropbertError::Vocabulary { path: p, message } => {
                assert_eq!(p, &path);
                assert!(message.contains("[MASK]"), "{message}");
            }
            other => panic!("expected a Vocabulary error, got {other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn empty_vocab_file_is_an_error() {
        let dir = scratch_dir("empty");
        let path = dir.join("vocab.txt");
        std::fs::write(&path, "").unwrap();
        let err = WordPieceTokenizer::from_vocab_file(&path, true).unwrap_err();
        assert!(
            matches!(&err, DropbertError::Vocabulary { message, .. } if message.contains("empty")),
            "{err:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_vocab_file_is_an_io_error() {
        let path = Path::new("/nonexistent/dropbert/vocab.txt");
        let err = WordPieceTokenizer::from_vocab_file(path, true).unwrap_err();
        assert!(matches!(err, DropbertError::Io { .. }), "{err:?}");
    }

    #[test]
    fn lines_split_like_python_universal_newlines() {
        assert_eq!(split_lines("a\r\nb\rc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n\nb\n"), ["a", "", "b"]);
        assert!(split_lines("").is_empty());
    }

    #[test]
    fn repeated_token_maps_to_its_last_id() {
        let tok = WordPieceTokenizer::from_tokens(vocab(&["x", "x"]), true).unwrap();
        assert_eq!(tok.vocab_size(), 7);
        assert_eq!(tok.token_to_id("x"), Some(6));
        assert_eq!(tok.id_to_token(5), Some("x"));
    }

    #[test]
    fn word_piece_greedy_longest_match() {
        let tok = WordPieceTokenizer::from_tokens(vocab(&["un", "##aff", "##able", "##a"]), true)
            .unwrap();
        assert_eq!(tok.tokenize("unaffable"), [5, 6, 7]);
        assert_eq!(tok.tokenize("unaffablex"), [tok.special.unk]);
        assert_eq!(tok.tokenize(&"a".repeat(101)), [tok.special.unk]);
    }

    #[test]
    fn save_vocab_round_trips() {
        let dir = scratch_dir("save");
        let path = dir.join("vocab.txt");
        let tok = WordPieceTokenizer::from_tokens(vocab(&["", "##x", "ü"]), false).unwrap();
        tok.save_vocab(&path).unwrap();
        let back = WordPieceTokenizer::from_vocab_file(&path, false).unwrap();
        assert_eq!(back.tokens, tok.tokens);
        assert_eq!(back.special_ids(), tok.special_ids());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn checkpoint_dir_reads_do_lower_case() {
        let dir = scratch_dir("checkpoint");
        std::fs::write(dir.join("vocab.txt"), vocab(&["a"]).join("\n")).unwrap();
        assert!(WordPieceTokenizer::from_checkpoint_dir(&dir)
            .unwrap()
            .lowercase());
        let config = dir.join("tokenizer_config.json");
        std::fs::write(
            &config,
            r#"{"do_lower_case": false, "strip_accents": null}"#,
        )
        .unwrap();
        assert!(!WordPieceTokenizer::from_checkpoint_dir(&dir)
            .unwrap()
            .lowercase());
        std::fs::write(&config, r#"{"mask_token": {"content": "[MASK]"}}"#).unwrap();
        assert!(WordPieceTokenizer::from_checkpoint_dir(&dir)
            .unwrap()
            .lowercase());
        std::fs::write(
            &config,
            r#"{"do_lower_case": true, "strip_accents": false}"#,
        )
        .unwrap();
        assert!(matches!(
            WordPieceTokenizer::from_checkpoint_dir(&dir),
            Err(DropbertError::Unsupported {
                key: "strip_accents",
                ..
            })
        ));
        std::fs::write(&config, r#"{"mask_token": "<mask>"}"#).unwrap();
        assert!(matches!(
            WordPieceTokenizer::from_checkpoint_dir(&dir),
            Err(DropbertError::Unsupported {
                key: "mask_token",
                ..
            })
        ));
        std::fs::write(&config, "{not json").unwrap();
        assert!(matches!(
            WordPieceTokenizer::from_checkpoint_dir(&dir),
            Err(DropbertError::Json { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    #[should_panic(expected = "cannot hold [CLS] and [SEP]")]
    fn encode_needs_room_for_cls_and_sep() {
        let tok = WordPieceTokenizer::from_tokens(vocab(&[]), true).unwrap();
        tok.encode("x", 1);
    }
}
