use serde::{Deserialize, Serialize};

use crate::{data::tokenizer::SpecialTokenIds, ops::KeptTokenRule, DropbertError, Result};

/// How the middle layers' tokens are chosen (the paper's method and its two ablations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The `K` most important tokens (the paper's method).
    Importance,
    /// `K` tokens at random.
    Random,
    /// Top-k by importance plus random-k: `random_fraction` of the `K` chosen at random.
    Mixed,
}

/// A run's token-dropping settings: the `[token_drop]` section of `run.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenDropSettings {
    pub selection: Selection,
    /// For `mixed`: the fraction of the kept tokens chosen at random.
    pub random_fraction: f32,
    /// Weight of the old value in the running average of each id's masked-LM loss.
    pub beta: f32,
    /// Starting importance of every ordinary id.
    pub initial_importance: f32,
}

impl Default for TokenDropSettings {
    fn default() -> Self {
        Self {
            selection: Selection::Importance,
            random_fraction: 0.5,
            beta: 0.995,
            initial_importance: 10.0,
        }
    }
}

/// Starting value of the allow-list ids, kept before any other.
pub const ALLOW_IMPORTANCE: f32 = 1e4;
/// Starting value of the deny-list id ([PAD]), dropped before any other.
pub const DENY_IMPORTANCE: f32 = -1e4;

impl TokenDropSettings {
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(DropbertError::InvalidInput(format!("[token_drop] {what}")));
        if !(0.0..=1.0).contains(&self.random_fraction) {
            return bad(format!(
                "random_fraction = {} must lie in [0, 1]",
                self.random_fraction
            ));
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad(format!("beta = {} must lie in [0, 1)", self.beta));
        }
        if !self.initial_importance.is_finite() {
            return bad("initial_importance must be finite".into());
        }
        Ok(())
    }

    /// The rule choosing `kept` of `seq` tokens.
    pub fn kept_token_rule(
        &self,
        seq: usize,
        kept: usize,
        special: SpecialTokenIds,
    ) -> KeptTokenRule {
        let random = match self.selection {
            Selection::Importance => 0,
            Selection::Random => kept,
            Selection::Mixed => (self.random_fraction * kept as f32).round() as usize,
        };
        KeptTokenRule {
            seq,
            kept,
            by_importance: kept - random.min(kept),
            allow: vec![special.unk, special.cls, special.sep, special.mask],
            deny: vec![special.pad],
        }
    }

    /// The importance table before the first step.
    pub fn initial_table(&self, vocab_size: usize, special: SpecialTokenIds) -> Vec<f32> {
        let mut table = vec![self.initial_importance; vocab_size];
        for id in [special.unk, special.cls, special.sep, special.mask] {
            table[id as usize] = ALLOW_IMPORTANCE;
        }
        table[special.pad as usize] = DENY_IMPORTANCE;
        table
    }
}
