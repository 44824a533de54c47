//! Packing tokenized documents into sequences of the compiled length.
//!
//! Each sequence is `[CLS] t1 .. tn [SEP]` followed by [PAD]s up to `seq_len`. A sequence holds
//! consecutive tokens of one document, across its sentence boundaries: a document longer than
//! `seq_len - 2` tokens continues in the next sequence, and a new document always starts a new
//! sequence. The last piece of a document is padded (attention mask 0), never dropped, so the
//! contents of the sequences concatenate back to the documents' tokens. Token types are all 0:
//! pretraining here is masked language modelling only, without next-sentence prediction.

use super::tokenizer::{Encoding, SpecialTokenIds};
use crate::{DropbertError, Result};

/// One packed sequence: exactly `seq_len` ids, the first `real_len` of them real.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSequence {
    input_ids: Vec<u32>,
    real_len: usize,
}

impl PackedSequence {
    /// All `seq_len` ids: [CLS], the content, [SEP], then [PAD]s.
    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// Number of ids before the padding ([CLS] and [SEP] included).
    pub fn real_len(&self) -> usize {
        self.real_len
    }

    /// The document tokens, without [CLS], [SEP] and padding.
    pub fn content(&self) -> &[u32] {
        &self.input_ids[1..self.real_len - 1]
    }

    /// 1 for the real ids, 0 for the padding.
    pub fn attention_mask(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.input_ids.len()).map(move |i| u32::from(i < self.real_len))
    }

    /// The sequence as model inputs (unmasked; token types all 0).
    pub fn to_encoding(&self) -> Encoding {
        Encoding {
            input_ids: self.input_ids.clone(),
            attention_mask: self.attention_mask().collect(),
            token_type_ids: vec![0; self.input_ids.len()],
        }
    }
}

/// Packs documents into sequences of `seq_len` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequencePacker {
    seq_len: usize,
    special: SpecialTokenIds,
}

impl SequencePacker {
    /// Errors if `seq_len < 3`: a sequence needs [CLS], [SEP] and at least one token.
    pub fn new(seq_len: usize, special: SpecialTokenIds) -> Result<Self> {
        if seq_len < 3 {
            return Err(DropbertError::InvalidInput(format!(
                "sequence length {seq_len} cannot hold [CLS], [SEP] and a token; it must be at least 3"
            )));
        }
        Ok(Self { seq_len, special })
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Document tokens per sequence: `seq_len - 2`.
    pub fn content_len(&self) -> usize {
        self.seq_len - 2
    }

    /// Number of sequences a document of `tokens` tokens packs into.
    pub fn sequences_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.content_len())
    }

    /// Appends the sequences of one document (none for an empty one) to `out`.
    pub fn pack_document(&self, tokens: &[u32], out: &mut Vec<PackedSequence>) {
        out.reserve(self.sequences_for(tokens.len()));
        for piece in tokens.chunks(self.content_len()) {
            let mut input_ids = Vec::with_capacity(self.seq_len);
            input_ids.push(self.special.cls);
            input_ids.extend_from_slice(piece);
            input_ids.push(self.special.sep);
            let real_len = input_ids.len();
            input_ids.resize(self.seq_len, self.special.pad);
            out.push(PackedSequence {
                input_ids,
                real_len,
            });
        }
    }

    /// Packs documents in order, several per sequence where they fit, separated by [SEP]
    /// (`[CLS] a [SEP] b [SEP]`), as RoBERTa's full-sentence packing does, so that short documents
    /// (a WordNet gloss is about 17 tokens) do not leave sequences mostly padding. A document that
    /// does not fit in the space left starts a new sequence; one longer than a whole sequence is
    /// split across sequences of its own, as [`pack_document`](Self::pack_document) does.
    pub fn pack<D: AsRef<[u32]>>(&self, documents: &[D]) -> Vec<PackedSequence> {
        let mut out = Vec::new();
        let mut current: Vec<u32> = Vec::with_capacity(self.content_len());
        for document in documents {
            let document = document.as_ref();
            if document.is_empty() {
                continue;
            }
            let separator = usize::from(!current.is_empty());
            if current.len() + separator + document.len() <= self.content_len() {
                if separator == 1 {
                    current.push(self.special.sep);
                }
                current.extend_from_slice(document);
                continue;
            }
            if !current.is_empty() {
                self.pack_document(&current, &mut out);
                current.clear();
            }
            if document.len() <= self.content_len() {
                current.extend_from_slice(document);
            } else {
                self.pack_document(document, &mut out);
            }
        }
        if !current.is_empty() {
            self.pack_document(&current, &mut out);
        }
        out
    }
}
