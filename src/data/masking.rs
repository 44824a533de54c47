//! Dynamic masking for masked language modelling (BERT's 15% with 80/10/10 replacement).

use rand::Rng;

use super::tokenizer::SpecialTokenIds;
use crate::{DropbertError, Result};

/// Label of a position that is not predicted (PyTorch's and Hugging Face's `ignore_index`).
pub const IGNORE_LABEL: i64 = -100;

/// How sequences are masked.
///
/// Candidates are the positions whose id is not one of the five special tokens ([PAD], [UNK],
/// [CLS], [SEP], [MASK]): padding and the sequence markers carry nothing to predict, and [UNK]
/// stands for text the vocabulary has lost, so predicting it teaches nothing.
///
/// Of `n` candidates, exactly `min(max_predictions, max(1, round(n * probability)))` are
/// predicted (none when `n == 0`), chosen uniformly without replacement. `round` is `f64::round`
/// (halves away from zero, as Python 2's `round` that BERT's `create_pretraining_data.py` was
/// written for): an exact count rather than an independent coin per token keeps the number of
/// predictions per sequence, and so the loss's scale, steady; `max(1, ..)` gives short sequences
/// a prediction too. Unlike BERT's code, `n` counts candidates only, not [CLS] and [SEP].
///
/// Each chosen position is then independently replaced by [MASK] with probability
/// `mask_fraction`, by a random id with probability `random_fraction`, and kept otherwise. A
/// random id is drawn uniformly from the non-special ids, so masking never creates a special
/// token where there was none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlmMasking {
    /// Share of the candidates that are predicted.
    pub probability: f64,
    /// Most predictions in one sequence.
    pub max_predictions: usize,
    /// Share of the predictions replaced by [MASK].
    pub mask_fraction: f64,
    /// Share of the predictions replaced by a random id (the rest stay unchanged).
    pub random_fraction: f64,
}

impl MlmMasking {
    /// BERT's settings (15%, 80/10/10) with the given cap on predictions.
    pub fn new(max_predictions: usize) -> Self {
        Self {
            probability: 0.15,
            max_predictions,
            mask_fraction: 0.8,
            random_fraction: 0.1,
        }
    }

    /// BERT's settings with `max_predictions = ceil(0.15 * seq_len)` (20 for 128 tokens), which
    /// never binds below the cap: a sequence has fewer candidates than ids.
    pub fn for_seq_len(seq_len: usize) -> Self {
        Self::new((seq_len * 15).div_ceil(100).max(1))
    }

    /// Checks the settings: probability in (0, 1], fractions non-negative and adding up to at
    /// most 1, at least one prediction allowed.
    pub fn validate(&self) -> Result<()> {
        let fraction = |x: f64| (0.0..=1.0).contains(&x);
        let problem = if !(self.probability > 0.0 && self.probability <= 1.0) {
            format!(
                "masking probability {} must lie in (0, 1]",
                self.probability
            )
        } else if self.max_predictions == 0 {
            "max predictions per sequence must be at least 1".to_string()
        } else if !fraction(self.mask_fraction)
            || !fraction(self.random_fraction)
            || self.mask_fraction + self.random_fraction > 1.0
        {
            format!(
                "mask fraction {} and random fraction {} must be non-negative and add up to at most 1",
                self.mask_fraction, self.random_fraction
            )
        } else {
            return Ok(());
        };
        Err(DropbertError::InvalidInput(problem))
    }

    /// Number of positions predicted among `candidates`.
    pub fn predictions_for(&self, candidates: usize) -> usize {
        if candidates == 0 {
            return 0;
        }
        let rounded = (candidates as f64 * self.probability).round() as usize;
        rounded.clamp(1, candidates).min(self.max_predictions)
    }

    /// Masks `input_ids` into `masked` (same length; the input with replacements) and `labels`
    /// (the original id where predicted, [`IGNORE_LABEL`] elsewhere).
    ///
    /// The draws from `rng`, in order: a partial Fisher–Yates shuffle of the candidate positions
    /// (one `gen_range` per prediction), then per chosen position in increasing order one
    /// `gen::<f64>()` for the replacement kind and, for a random replacement, one `gen_range` for
    /// the id.
    ///
    /// # Panics
    /// If `masked` or `labels` is not as long as `input_ids`.
    pub fn apply_into<R: Rng + ?Sized>(
        &self,
        input_ids: &[u32],
        vocab: &MaskingVocab,
        rng: &mut R,
        masked: &mut [u32],
        labels: &mut [i64],
    ) {
        assert_eq!(
            masked.len(),
            input_ids.len(),
            "masked ids of the wrong length"
        );
        assert_eq!(labels.len(), input_ids.len(), "labels of the wrong length");
        masked.copy_from_slice(input_ids);
        labels.fill(IGNORE_LABEL);
        let mut candidates: Vec<usize> = input_ids
            .iter()
            .enumerate()
            .filter(|(_, &id)| !vocab.is_special(id))
            .map(|(i, _)| i)
            .collect();
        let count = self.predictions_for(candidates.len());
        for i in 0..count {
            let j = rng.gen_range(i..candidates.len());
            candidates.swap(i, j);
        }
        let chosen = &mut candidates[..count];
        chosen.sort_unstable();
        for &position in chosen.iter() {
            labels[position] = i64::from(input_ids[position]);
            let kind: f64 = rng.gen();
            if kind < self.mask_fraction {
                masked[position] = vocab.special.mask;
            } else if kind < self.mask_fraction + self.random_fraction {
                if let Some(id) = vocab.random_id(rng) {
                    masked[position] = id;
                }
            }
        }
    }

    /// [`apply_into`](Self::apply_into) into new vectors.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        input_ids: &[u32],
        vocab: &MaskingVocab,
        rng: &mut R,
    ) -> MaskedSequence {
        let mut masked = vec![0; input_ids.len()];
        let mut labels = vec![0; input_ids.len()];
        self.apply_into(input_ids, vocab, rng, &mut masked, &mut labels);
        MaskedSequence {
            input_ids: masked,
            labels,
        }
    }
}

/// A masked sequence: model input and MLM labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedSequence {
    pub input_ids: Vec<u32>,
    pub labels: Vec<i64>,
}

/// What masking needs to know of the vocabulary: its special ids and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskingVocab {
    special: SpecialTokenIds,
    vocab_size: u32,
    /// The distinct special ids, ascending.
    sorted_special: Vec<u32>,
}

impl MaskingVocab {
    /// Errors if a special id is outside the vocabulary.
    pub fn new(special: SpecialTokenIds, vocab_size: usize) -> Result<Self> {
        let vocab_size = u32::try_from(vocab_size).map_err(|_| {
            DropbertError::InvalidInput(format!("vocab size {vocab_size} does not fit u32 ids"))
        })?;
        let mut sorted_special = vec![
            special.pad,
            special.unk,
            special.cls,
            special.sep,
            special.mask,
        ];
        sorted_special.sort_unstable();
        sorted_special.dedup();
        if let Some(&id) = sorted_special.iter().find(|&&id| id >= vocab_size) {
            return Err(DropbertError::InvalidInput(format!(
                "special token id {id} is outside the vocabulary of {vocab_size} ids"
            )));
        }
        Ok(Self {
            special,
            vocab_size,
            sorted_special,
        })
    }

    pub fn special(&self) -> SpecialTokenIds {
        self.special
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size as usize
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.sorted_special.binary_search(&id).is_ok()
    }

    /// A uniformly drawn non-special id; `None` (drawing nothing) if every id is special.
    fn random_id<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<u32> {
        let ordinary = self.vocab_size - self.sorted_special.len() as u32;
        if ordinary == 0 {
            return None;
        }
        // The k-th non-special id: step over each special id at or below it.
        let mut id = rng.gen_range(0..ordinary);
        for &special in &self.sorted_special {
            if special <= id {
                id += 1;
            }
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn random_ids_are_never_special() {
        let special = SpecialTokenIds {
            pad: 0,
            unk: 3,
            cls: 4,
            sep: 9,
            mask: 5,
        };
        let vocab = MaskingVocab::new(special, 10).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = [0usize; 10];
        for _ in 0..2000 {
            seen[vocab.random_id(&mut rng).unwrap() as usize] += 1;
        }
        for (id, &count) in seen.iter().enumerate() {
            assert_eq!(count > 0, !vocab.is_special(id as u32), "id {id}: {count}");
        }
        let only_special = MaskingVocab::new(special, 10).map(|mut v| {
            v.sorted_special = (0..10).collect();
            v
        });
        assert_eq!(only_special.unwrap().random_id(&mut rng), None);
    }

    #[test]
    fn prediction_counts_round_and_cap() {
        let masking = MlmMasking::new(20);
        assert_eq!(masking.predictions_for(0), 0);
        assert_eq!(masking.predictions_for(1), 1);
        assert_eq!(masking.predictions_for(3), 1);
        assert_eq!(masking.predictions_for(100), 15);
        assert_eq!(masking.predictions_for(126), 19);
        assert_eq!(masking.predictions_for(1000), 20);
        assert_eq!(MlmMasking::for_seq_len(128).max_predictions, 20);
        assert_eq!(MlmMasking::for_seq_len(512).max_predictions, 77);
    }
}
