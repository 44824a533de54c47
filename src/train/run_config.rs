use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    drop::{LayerDropSchedule, TokenDropSettings},
    optim::{AdamW, Algorithm, Lamb, LearningRateSchedule, OptimizerSettings},
    DropbertError, Result,
};

/// Everything that decides a pretraining run, as a TOML file (`--config run.toml`) whose every
/// key is optional; command-line flags override it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// A text file or a folder of them; none means the embedded WordNet corpus.
    pub corpus: Option<PathBuf>,
    /// A vocab.txt; none means the embedded corpus' vocabulary, or one trained on `corpus`.
    pub vocab: Option<PathBuf>,
    /// "blocks" (documents separated by blank lines) or "lines" (one document per line).
    pub documents: String,
    pub out_dir: PathBuf,
    pub steps: u64,
    pub seed: u64,
    /// "adamw" or "lamb".
    pub optimizer: String,
    pub learning_rate: f32,
    pub warmup_steps: u64,
    /// "linear", "cosine" or "constant".
    pub schedule: String,
    pub weight_decay: f64,
    pub max_grad_norm: Option<f32>,
    pub hidden_dropout: f32,
    pub attention_dropout: f32,
    pub validation_fraction: f64,
    /// Validate every this many steps (and at the end); 0 only at the end.
    pub eval_every: u64,
    /// Most validation batches per evaluation.
    pub eval_batches: usize,
    /// Save a checkpoint every this many steps (and at the end); 0 only at the end.
    pub save_every: u64,
    /// `[token_drop]`: token dropping's selection and importance update (binaries compiled
    /// with token dropping only; absent = the defaults).
    pub token_drop: Option<TokenDropSettings>,
    /// `[layer_drop]`: progressive layer dropping's keep schedule (binaries compiled with layer
    /// dropping only; absent = the configuration's).
    pub layer_drop: Option<LayerDropSchedule>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            corpus: None,
            vocab: None,
            documents: "blocks".into(),
            out_dir: PathBuf::from("runs/latest"),
            steps: 300,
            seed: 0,
            optimizer: "adamw".into(),
            learning_rate: 1e-3,
            warmup_steps: 30,
            schedule: "linear".into(),
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            hidden_dropout: 0.1,
            attention_dropout: 0.1,
            validation_fraction: 0.01,
            eval_every: 100,
            eval_batches: 20,
            save_every: 0,
            token_drop: None,
            layer_drop: None,
        }
    }
}

impl RunConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DropbertError::io(path, e))?;
        toml::from_str(&text).map_err(|e| {
            DropbertError::InvalidInput(format!("{}: {}", path.display(), e.message()))
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a run config serializes")
    }

    pub fn optimizer_settings(&self) -> Result<OptimizerSettings> {
        let algorithm = match self.optimizer.as_str() {
            "adamw" => Algorithm::AdamW(AdamW {
                weight_decay: self.weight_decay,
                ..AdamW::default()
            }),
            "lamb" => Algorithm::Lamb(Lamb {
                weight_decay: self.weight_decay,
                ..Lamb::default()
            }),
            other => {
                return Err(DropbertError::InvalidInput(format!(
                    "optimizer {other:?}: expected \"adamw\" or \"lamb\""
                )))
            }
        };
        let (warmup_steps, total_steps) = (self.warmup_steps, self.steps);
        let schedule = match self.schedule.as_str() {
            "linear" => LearningRateSchedule::LinearWarmupLinearDecay {
                warmup_steps,
                total_steps,
            },
            "cosine" => LearningRateSchedule::LinearWarmupCosine {
                warmup_steps,
                total_steps,
            },
            "constant" => LearningRateSchedule::Constant,
            other => {
                return Err(DropbertError::InvalidInput(format!(
                    "schedule {other:?}: expected \"linear\", \"cosine\" or \"constant\""
                )))
            }
        };
        Ok(OptimizerSettings {
            algorithm,
            peak_learning_rate: self.learning_rate,
            schedule,
            max_grad_norm: self.max_grad_norm,
        })
    }
}
