//! The MLM dataset: packed sequences split into training and validation, and their batches.
//!
//! Everything random is drawn from a ChaCha8 stream whose 256-bit key is the run's seed, a
//! purpose tag, and two indices (see [`derived_rng`]), so any batch is a pure function of the
//! dataset, the seed and its [`DataPosition`]: a run resumed from a saved position produces
//! bit-identical batches to one that never stopped. ChaCha8 (`rand_chacha` 0.3) and rand 0.8's
//! `gen_range`/`gen`/`shuffle` are value-stable across platforms within those versions, unlike
//! `StdRng`, which rand documents as free to change.
//!
//! - Split: documents are shuffled with `derived_rng(seed, SPLIT, 0, 0)`; the first
//!   `round(validation_fraction * documents)` (at least 1 and at most all but one when the
//!   fraction is positive and there are two or more documents) are validation documents. Both
//!   sides keep corpus order and are packed separately, so no document straddles the split.
//! - Shuffle: the training order of epoch `e` is a Fisher–Yates shuffle of the training
//!   sequences with `derived_rng(seed, SHUFFLE, e, 0)`.
//! - Masking: the sequence at index `i` of epoch `e`'s order is masked with
//!   `derived_rng(seed, TRAIN_MASK, e, i)`, so each epoch masks each sequence anew (dynamic
//!   masking). Validation sequence `i` uses `derived_rng(seed, VALIDATION_MASK, 0, i)` every time,
//!   so validation losses of different steps are comparable.

use std::fmt;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;
use super::corpus::Document;
use super::masking::{MaskingVocab, MlmMasking, IGNORE_LABEL};
use super::packing::{PackedSequence, SequencePacker};
use super::tokenizer::{SpecialTokenIds, WordPieceTokenizer};
use crate::{DropbertError, Result};

/// Purposes of the derived random streams; part of the key, so streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum RngPurpose {
    Split = 1,
    Shuffle = 2,
    TrainMask = 3,
    ValidationMask = 4,
}

/// The random stream for `(seed, purpose, a, b)`: ChaCha8 keyed with the four numbers as
/// little-endian `u64`s, stream 0, starting at word 0.
pub fn derived_rng(seed: u64, purpose: RngPurpose, a: u64, b: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, value) in key.chunks_exact_mut(8).zip([seed, purpose as u64, a, b]) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Where the training stream is: the next sequence is number `index` of epoch `epoch`'s shuffled
/// order. Saved with a checkpoint, it makes the batches after a resume the ones that an
/// uninterrupted run would have seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataPosition {
    pub epoch: u64,
    pub index: u64,
}

/// One batch: masked inputs (rows past `tokens.rows` are padding rows) and labels, `[batch, seq]`
/// row-major; labels are [`IGNORE_LABEL`] except at predicted positions.
#[derive(Debug, Clone, PartialEq)]
pub struct MlmBatch {
    pub tokens: TokenBatch,
    pub labels: Vec<i64>,
}

impl MlmBatch {
    /// Number of predicted positions.
    pub fn predictions(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE_LABEL).count()
    }
}

/// Settings of an [`MlmDataset`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlmDatasetOptions {
    /// Compiled sequence length.
    pub seq_len: usize,
    /// Compiled batch size.
    pub batch_size: usize,
    /// Share of the documents held out for validation, in [0, 1).
    pub validation_fraction: f64,
    pub seed: u64,
    pub masking: MlmMasking,
}

impl MlmDatasetOptions {
    /// BERT masking for `seq_len`, 1% of the documents for validation.
    pub fn new(seq_len: usize, batch_size: usize, seed: u64) -> Self {
        Self {
            seq_len,
            batch_size,
            validation_fraction: 0.01,
            seed,
            masking: MlmMasking::for_seq_len(seq_len),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(DropbertError::InvalidInput(
                "batch size must be at least 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(DropbertError::InvalidInput(format!(
                "validation fraction {} must lie in [0, 1)",
                self.validation_fraction
            )));
        }
        self.masking.validate()
    }
}

/// Packed training and validation sequences with their batching.
#[derive(Debug, Clone)]
pub struct MlmDataset {
    train: Vec<PackedSequence>,
    validation: Vec<PackedSequence>,
    vocab: MaskingVocab,
    options: MlmDatasetOptions,
    documents: DocumentCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DocumentCounts {
    train: usize,
    validation: usize,
    empty: usize,
}

impl MlmDataset {
    /// Tokenizes `documents` (on all cores), splits and packs them.
    pub fn from_documents(
        documents: &[Document],
        tokenizer: &WordPieceTokenizer,
        options: MlmDatasetOptions,
    ) -> Result<Self> {
        let tokenized = tokenize_parallel(documents, tokenizer);
        Self::from_token_documents(
            tokenized,
            tokenizer.special_ids(),
            tokenizer.vocab_size(),
            options,
        )
    }

    /// Splits and packs documents that are already token ids (without special tokens).
    /// Documents without tokens are dropped before the split.
    pub fn from_token_documents(
        documents: Vec<Vec<u32>>,
        special: SpecialTokenIds,
        vocab_size: usize,
        options: MlmDatasetOptions,
    ) -> Result<Self> {
        options.validate()?;
        let packer = SequencePacker::new(options.seq_len, special)?;
        let vocab = MaskingVocab::new(special, vocab_size)?;
        if let Some(id) = documents
            .iter()
            .flatten()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(DropbertError::InvalidInput(format!(
                "token id {id} is outside the vocabulary of {vocab_size} ids"
            )));
        }
        let total = documents.len();
        let documents: Vec<Vec<u32>> = documents.into_iter().filter(|d| !d.is_empty()).collect();
        let empty = total - documents.len();
        if documents.is_empty() {
            return Err(DropbertError::InvalidInput(format!(
                "the corpus has no tokens ({total} documents, all empty)"
            )));
        }
        let is_validation = split_documents(documents.len(), &options);
        let (mut train_docs, mut validation_docs) = (Vec::new(), Vec::new());
        for (document, validation) in documents.into_iter().zip(is_validation) {
            if validation {
                validation_docs.push(document);
            } else {
                train_docs.push(document);
            }
        }
        Ok(Self {
            train: packer.pack(&train_docs),
            validation: packer.pack(&validation_docs),
            vocab,
            options,
            documents: DocumentCounts {
                train: train_docs.len(),
                validation: validation_docs.len(),
                empty,
            },
        })
    }

    pub fn options(&self) -> &MlmDatasetOptions {
        &self.options
    }

    pub fn train_sequences(&self) -> &[PackedSequence] {
        &self.train
    }

    pub fn validation_sequences(&self) -> &[PackedSequence] {
        &self.validation
    }

    /// Training batches in one epoch's worth of sequences (the last one may reach into the next
    /// epoch).
    pub fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.options.batch_size)
    }

    /// The endless stream of training batches from `start`. Every batch is full: the stream runs
    /// on from one epoch's order into the next, so no sequence is skipped and no row is padding.
    pub fn train_batches(&self, start: DataPosition) -> TrainBatches<'_> {
        let len = self.train.len() as u64;
        let position = DataPosition {
            epoch: start.epoch + start.index / len,
            index: start.index % len,
        };
        TrainBatches {
            dataset: self,
            position,
            order: Vec::new(),
            order_epoch: None,
        }
    }

    /// The validation batches, in order, each masked the same way every time; the last one is
    /// filled up with padding rows (all labels [`IGNORE_LABEL`]). Empty without validation data.
    pub fn validation_batches(&self) -> impl Iterator<Item = MlmBatch> + '_ {
        let batch_size = self.options.batch_size;
        self.validation
            .chunks(batch_size)
            .enumerate()
            .map(move |(batch, sequences)| {
                let first = (batch * batch_size) as u64;
                self.assemble(sequences.iter().enumerate().map(|(row, sequence)| {
                    let index = first + row as u64;
                    let rng = derived_rng(self.options.seed, RngPurpose::ValidationMask, 0, index);
                    (sequence, rng)
                }))
            })
    }

    /// A fingerprint of the training and validation sequences and the options (FNV-1a), to check
    /// that a resumed run packs the same data as the run that saved its position.
    pub fn fingerprint(&self) -> u64 {
        let mut hash = Fnv1a::default();
        let o = &self.options;
        for value in [
            o.seq_len as u64,
            o.batch_size as u64,
            o.validation_fraction.to_bits(),
            o.seed,
            o.masking.probability.to_bits(),
            o.masking.max_predictions as u64,
            o.masking.mask_fraction.to_bits(),
            o.masking.random_fraction.to_bits(),
            self.vocab.vocab_size() as u64,
        ] {
            hash.write(value);
        }
        for sequences in [&self.train, &self.validation] {
            hash.write(sequences.len() as u64);
            for sequence in sequences.iter() {
                for &id in sequence.input_ids() {
                    hash.write(u64::from(id));
                }
            }
        }
        hash.0
    }

    /// Counts for the run's log.
    pub fn summary(&self) -> DatasetSummary {
        let tokens = |sequences: &[PackedSequence]| {
            sequences
                .iter()
                .map(|s| s.content().len() as u64)
                .sum::<u64>()
        };
        DatasetSummary {
            train_documents: self.documents.train,
            validation_documents: self.documents.validation,
            empty_documents: self.documents.empty,
            train_sequences: self.train.len(),
            validation_sequences: self.validation.len(),
            train_tokens: tokens(&self.train),
            validation_tokens: tokens(&self.validation),
            seq_len: self.options.seq_len,
        }
    }

    /// Masks and stacks up to `batch_size` sequences, each with its own random stream.
    fn assemble<'s>(
        &self,
        rows: impl Iterator<Item = (&'s PackedSequence, ChaCha8Rng)>,
    ) -> MlmBatch {
        let seq_len = self.options.seq_len;
        let size = self.options.batch_size * seq_len;
        let pad = self.vocab.special().pad;
        let mut tokens = TokenBatch {
            input_ids: vec![pad; size],
            token_type_ids: vec![0; size],
            attention_mask: vec![0; size],
            rows: 0,
        };
        let mut labels = vec![IGNORE_LABEL; size];
        for (row, (sequence, mut rng)) in rows.enumerate() {
            let span = row * seq_len..(row + 1) * seq_len;
            self.options.masking.apply_into(
                sequence.input_ids(),
                &self.vocab,
                &mut rng,
                &mut tokens.input_ids[span.clone()],
                &mut labels[span.clone()],
            );
            tokens.attention_mask[span.start..span.start + sequence.real_len()].fill(1);
            tokens.rows = row + 1;
        }
        MlmBatch { tokens, labels }
    }
}

/// The training batch stream of [`MlmDataset::train_batches`]; endless.
#[derive(Debug, Clone)]
pub struct TrainBatches<'a> {
    dataset: &'a MlmDataset,
    position: DataPosition,
    /// The shuffled order of `order_epoch`.
    order: Vec<u32>,
    order_epoch: Option<u64>,
}

impl TrainBatches<'_> {
    /// Position of the next batch's first sequence: save it to resume after the last batch taken.
    pub fn position(&self) -> DataPosition {
        self.position
    }

    /// The training sequence index at `position`, reshuffling when the epoch changes.
    fn sequence_at(&mut self, position: DataPosition) -> usize {
        if self.order_epoch != Some(position.epoch) {
            let len = self.dataset.train.len() as u32;
            self.order.clear();
            self.order.extend(0..len);
            let mut rng = derived_rng(
                self.dataset.options.seed,
                RngPurpose::Shuffle,
                position.epoch,
                0,
            );
            self.order.shuffle(&mut rng);
            self.order_epoch = Some(position.epoch);
        }
        self.order[position.index as usize] as usize
    }
}

impl Iterator for TrainBatches<'_> {
    type Item = MlmBatch;

    fn next(&mut self) -> Option<MlmBatch> {
        let dataset = self.dataset;
        let len = dataset.train.len() as u64;
        let mut rows = Vec::with_capacity(dataset.options.batch_size);
        for _ in 0..dataset.options.batch_size {
            let position = self.position;
            let sequence = &dataset.train[self.sequence_at(position)];
            let rng = derived_rng(
                dataset.options.seed,
                RngPurpose::TrainMask,
                position.epoch,
                position.index,
            );
            rows.push((sequence, rng));
            self.position = if position.index + 1 == len {
                DataPosition {
                    epoch: position.epoch + 1,
                    index: 0,
                }
            } else {
                DataPosition {
                    epoch: position.epoch,
                    index: position.index + 1,
                }
            };
        }
        Some(dataset.assemble(rows.into_iter()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Dataset counts for the run's log (`Display` is one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSummary {
    pub train_documents: usize,
    pub validation_documents: usize,
    /// Documents without a single token, dropped.
    pub empty_documents: usize,
    pub train_sequences: usize,
    pub validation_sequences: usize,
    pub train_tokens: u64,
    pub validation_tokens: u64,
    pub seq_len: usize,
}

impl fmt::Display for DatasetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fill = |tokens: u64, sequences: usize| {
            let capacity = (sequences * self.seq_len.saturating_sub(2)).max(1);
            100.0 * tokens as f64 / capacity as f64
        };
        write!(
            f,
            "data: train {} documents, {} sequences, {} tokens ({:.1}% of the slots); \
             validation {} documents, {} sequences, {} tokens; {} empty documents dropped",
            self.train_documents,
            self.train_sequences,
            self.train_tokens,
            fill(self.train_tokens, self.train_sequences),
            self.validation_documents,
            self.validation_sequences,
            self.validation_tokens,
            self.empty_documents,
        )
    }
}

/// Which documents are held out for validation; see the module documentation.
fn split_documents(count: usize, options: &MlmDatasetOptions) -> Vec<bool> {
    let mut is_validation = vec![false; count];
    if options.validation_fraction <= 0.0 || count < 2 {
        return is_validation;
    }
    let wanted = (options.validation_fraction * count as f64).round() as usize;
    let held_out = wanted.clamp(1, count - 1);
    let mut order: Vec<usize> = (0..count).collect();
    let mut rng = derived_rng(options.seed, RngPurpose::Split, 0, 0);
    order.shuffle(&mut rng);
    for &document in &order[..held_out] {
        is_validation[document] = true;
    }
    is_validation
}

/// Tokenizes documents on all available cores, keeping their order.
fn tokenize_parallel(documents: &[Document], tokenizer: &WordPieceTokenizer) -> Vec<Vec<u32>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = documents.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = documents
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|d| tokenizer.tokenize(&d.text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(tokens) => tokens,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[derive(Debug)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, value: u64) {
        for byte in value.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
