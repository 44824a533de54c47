//! Training a BERT WordPiece vocabulary from a corpus, for runs given no vocabulary.
//!
//! Text is normalized and split as Hugging Face's `BertWordPieceTokenizer` does (the `tokenizers`
//! crate's `BertNormalizer`: cleaned, CJK characters isolated, lower-cased, accents stripped; then
//! `BertPreTokenizer`: whitespace and punctuation), and the vocabulary is learned by that crate's
//! `WordPieceTrainer`.
//!
//! The trainer on its own is not deterministic: it numbers the `##`-continuations of the alphabet
//! in hash-map order (a random seed per process), and ties between equally frequent merges are
//! broken by those numbers. So the alphabet is chosen here — the `limit_alphabet` most frequent
//! characters, ties by code point — and handed to the trainer ahead of everything else (as
//! tokens it must keep, in a fixed order: the special tokens, the characters by code point, then
//! their `##` forms by code point). Every id the merges are ordered by is then fixed, and the
//! same corpus gives the same vocabulary in every run.

use std::collections::BTreeMap;

use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{
    AddedToken, Model, NormalizedString, Normalizer, OffsetReferential, OffsetType,
    PreTokenizedString, PreTokenizer, Trainer,
};

use super::tokenizer::WordPieceTokenizer;
use crate::{DropbertError, Result};

/// BERT's special tokens; they get ids 0 to 4 in this order.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const CONTINUATION_PREFIX: &str = "##";

/// Settings of [`train_wordpiece_vocab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VocabTraining {
    /// Exact size of the vocabulary returned (the model's embedding rows). When the corpus
    /// supports fewer tokens, the rest are filled with `[unused0]`, `[unused1]`, ... (as BERT's
    /// vocabularies do), tokens that text never produces.
    pub vocab_size: usize,
    /// Merges seen fewer times than this are not learned.
    pub min_frequency: u64,
    /// Most distinct characters kept (the most frequent ones); rarer characters become [UNK].
    /// Lowered further where needed so that the special tokens, the characters and their `##`
    /// forms fit the vocabulary size.
    pub limit_alphabet: usize,
}

impl VocabTraining {
    /// `BertWordPieceTokenizer`'s defaults: min frequency 2, at most 1000 characters.
    pub fn new(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            min_frequency: 2,
            limit_alphabet: 1000,
        }
    }
}

/// Trains a lower-casing WordPiece vocabulary of exactly `options.vocab_size` tokens from
/// `texts`; the same texts and options always give the same vocabulary.
pub fn train_wordpiece_vocab<S: AsRef<str> + Sync>(
    texts: &[S],
    options: &VocabTraining,
) -> Result<WordPieceTokenizer> {
    let training_error =
        |e: tokenizers::Error| DropbertError::InvalidInput(format!("vocabulary training: {e}"));
    if options.vocab_size <= SPECIAL_TOKENS.len() {
        return Err(DropbertError::InvalidInput(format!(
            "vocab size {} leaves no room next to the {} special tokens",
            options.vocab_size,
            SPECIAL_TOKENS.len()
        )));
    }
    let splitter = WordSplitter::new();
    let characters = count_characters(texts, &splitter).map_err(training_error)?;
    if characters.is_empty() {
        return Err(DropbertError::InvalidInput(
            "the corpus has no text to train a vocabulary on".into(),
        ));
    }
    let alphabet = choose_alphabet(&characters, options);

    let mut pinned: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    pinned.extend(alphabet.iter().map(char::to_string));
    pinned.extend(
        alphabet
            .iter()
            .filter(|c| characters[c].continues_words)
            .map(|c| format!("{CONTINUATION_PREFIX}{c}")),
    );
    let mut trainer = WordPieceTrainer::builder()
        .vocab_size(options.vocab_size)
        .min_frequency(options.min_frequency)
        .show_progress(false)
        .special_tokens(
            pinned
                .into_iter()
                .map(|token| AddedToken::from(token, true))
                .collect(),
        )
        .initial_alphabet(alphabet.iter().copied().collect())
        .limit_alphabet(alphabet.len())
        .continuing_subword_prefix(CONTINUATION_PREFIX.to_string())
        .build();
    trainer
        .feed(texts.iter().map(AsRef::as_ref), |text| splitter.words(text))
        .map_err(training_error)?;
    let mut model = WordPiece::default();
    trainer.train(&mut model).map_err(training_error)?;

    let mut by_id: Vec<(u32, String)> = model
        .get_vocab()
        .into_iter()
        .map(|(token, id)| (id, token))
        .collect();
    by_id.sort_unstable();
    if by_id
        .iter()
        .enumerate()
        .any(|(i, (id, _))| *id as usize != i)
    {
        return Err(DropbertError::InvalidInput(
            "vocabulary training: the trainer returned non-contiguous ids".into(),
        ));
    }
    let mut tokens: Vec<String> = by_id.into_iter().map(|(_, token)| token).collect();
    if tokens.len() > options.vocab_size {
        return Err(DropbertError::InvalidInput(format!(
            "vocabulary training: {} tokens learned, more than the {} asked for",
            tokens.len(),
            options.vocab_size
        )));
    }
    let missing = options.vocab_size - tokens.len();
    tokens.extend((0..missing).map(|i| format!("[unused{i}]")));
    WordPieceTokenizer::from_tokens(tokens, true)
}

/// Normalization and word splitting of `BertWordPieceTokenizer`.
struct WordSplitter {
    normalizer: BertNormalizer,
}

impl WordSplitter {
    fn new() -> Self {
        // Clean text, isolate CJK characters, strip accents (following lower-casing), lower-case.
        Self {
            normalizer: BertNormalizer::new(true, true, None, true),
        }
    }

    fn words(&self, text: &str) -> tokenizers::Result<Vec<String>> {
        let mut normalized = NormalizedString::from(text);
        self.normalizer.normalize(&mut normalized)?;
        let mut pre_tokenized = PreTokenizedString::from(normalized);
        BertPreTokenizer.pre_tokenize(&mut pre_tokenized)?;
        Ok(pre_tokenized
            .get_splits(OffsetReferential::Normalized, OffsetType::None)
            .into_iter()
            .map(|(word, _, _)| word.to_owned())
            .collect())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct CharacterStats {
    count: u64,
    /// Seen after the first character of a word, so its `##` form is needed.
    continues_words: bool,
}

/// Character statistics over all words of the corpus (on all cores).
fn count_characters<S: AsRef<str> + Sync>(
    texts: &[S],
    splitter: &WordSplitter,
) -> tokenizers::Result<BTreeMap<char, CharacterStats>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = texts.len().div_ceil(threads).max(1);
    let partials = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut stats = BTreeMap::<char, CharacterStats>::new();
                    for text in part {
                        for word in splitter.words(text.as_ref())? {
                            for (i, c) in word.chars().enumerate() {
                                let entry = stats.entry(c).or_default();
                                entry.count += 1;
                                entry.continues_words |= i > 0;
                            }
                        }
                    }
                    Ok::<_, tokenizers::Error>(stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(stats) => stats,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect::<Vec<_>>()
    });
    let mut total = BTreeMap::<char, CharacterStats>::new();
    for partial in partials {
        for (c, stats) in partial? {
            let entry = total.entry(c).or_default();
            entry.count += stats.count;
            entry.continues_words |= stats.continues_words;
        }
    }
    Ok(total)
}

/// The most frequent characters (ties by code point), as many as `limit_alphabet` allows and the
/// vocabulary size holds with their `##` forms; returned sorted by code point.
fn choose_alphabet(
    characters: &BTreeMap<char, CharacterStats>,
    options: &VocabTraining,
) -> Vec<char> {
    let mut by_frequency: Vec<(char, CharacterStats)> =
        characters.iter().map(|(&c, &s)| (c, s)).collect();
    by_frequency.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
    by_frequency.truncate(options.limit_alphabet);
    let room = options.vocab_size - SPECIAL_TOKENS.len();
    let mut used = 0;
    let mut kept = Vec::new();
    for (c, stats) in by_frequency {
        let cost = 1 + usize::from(stats.continues_words);
        if used + cost > room {
            break;
        }
        used += cost;
        kept.push(c);
    }
    kept.sort_unstable();
    kept
}
