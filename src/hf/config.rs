use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    config::{BertConfig, BertDims, BertSettings, BlockLayout},
    DropbertError, Result,
};

/// A Hugging Face BERT `config.json`: the keys dropbert reads, each with transformers' default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfBertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "defaults::type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    #[serde(default = "defaults::dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "defaults::dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "defaults::initializer_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "defaults::position_embedding_type")]
    pub position_embedding_type: String,
    #[serde(default = "defaults::model_type")]
    pub model_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default = "defaults::tie_word_embeddings")]
    pub tie_word_embeddings: bool,
    /// dropbert's own key: the block layout of a Pre-LN checkpoint, which `transformers` cannot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropbert_block_layout: Option<String>,
}

mod defaults {
    pub fn max_position_embeddings() -> usize {
        512
    }
    pub fn type_vocab_size() -> usize {
        2
    }
    pub fn layer_norm_eps() -> f64 {
        1e-12
    }
    pub fn hidden_act() -> String {
        "gelu".into()
    }
    pub fn dropout() -> f64 {
        0.1
    }
    pub fn initializer_range() -> f64 {
        0.02
    }
    pub fn position_embedding_type() -> String {
        "absolute".into()
    }
    pub fn model_type() -> String {
        "bert".into()
    }
    pub fn tie_word_embeddings() -> bool {
        true
    }
}

impl HfBertConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DropbertError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| DropbertError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a config always serializes");
        super::tensor_file::write_atomically(path, text.as_bytes())
    }

    /// The configuration describing a model of dimensions `dims` with `settings`.
    pub fn from_dims(dims: &BertDims, settings: &BertSettings) -> Self {
        Self {
            vocab_size: dims.vocab_size,
            hidden_size: dims.hidden_size,
            num_hidden_layers: dims.num_layers,
            num_attention_heads: dims.num_heads,
            intermediate_size: dims.intermediate_size,
            max_position_embeddings: dims.max_positions,
            type_vocab_size: dims.type_vocab_size,
            layer_norm_eps: settings.layer_norm_eps as f64,
            hidden_act: defaults::hidden_act(),
            hidden_dropout_prob: settings.dropout.hidden_rate as f64,
            attention_probs_dropout_prob: settings.dropout.attention_rate as f64,
            initializer_range: settings.initializer_range as f64,
            pad_token_id: 0,
            position_embedding_type: defaults::position_embedding_type(),
            model_type: defaults::model_type(),
            architectures: Some(vec!["BertForMaskedLM".into()]),
            tie_word_embeddings: true,
            dropbert_block_layout: match dims.layout {
                BlockLayout::PostLn => None,
                BlockLayout::PreLn => Some(BlockLayout::PreLn.to_string()),
            },
        }
    }

    /// The block layout the checkpoint was trained with.
    pub fn block_layout(&self) -> Result<BlockLayout> {
        match self.dropbert_block_layout.as_deref() {
            None | Some("post-ln") => Ok(BlockLayout::PostLn),
            Some("pre-ln") => Ok(BlockLayout::PreLn),
            Some(other) => Err(DropbertError::Unsupported {
                key: "dropbert_block_layout",
                found: other.to_string(),
                expected: "\"post-ln\" or \"pre-ln\"".into(),
            }),
        }
    }

    /// Refuses a checkpoint whose dimensions or architecture differ from the compiled `C`.
    pub fn check_matches<C: BertConfig>(&self) -> Result<()> {
        let dims = &C::DIMS;
        let pairs: [(&'static str, usize, usize); 7] = [
            ("vocab_size", self.vocab_size, dims.vocab_size),
            ("hidden_size", self.hidden_size, dims.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers, dims.num_layers),
            (
                "num_attention_heads",
                self.num_attention_heads,
                dims.num_heads,
            ),
            (
                "intermediate_size",
                self.intermediate_size,
                dims.intermediate_size,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                dims.max_positions,
            ),
            (
                "type_vocab_size",
                self.type_vocab_size,
                dims.type_vocab_size,
            ),
        ];
        for (key, found, compiled) in pairs {
            if found != compiled {
                return Err(DropbertError::ConfigMismatch {
                    key,
                    found: found.to_string(),
                    compiled: compiled.to_string(),
                    config: C::NAME,
                });
            }
        }
        let layout = self.block_layout()?;
        if layout != dims.layout {
            return Err(DropbertError::ConfigMismatch {
                key: "dropbert_block_layout",
                found: layout.to_string(),
                compiled: dims.layout.to_string(),
                config: C::NAME,
            });
        }
        self.check_supported()
    }

    fn check_supported(&self) -> Result<()> {
        if self.model_type != "bert" {
            return Err(DropbertError::Unsupported {
                key: "model_type",
                found: self.model_type.clone(),
                expected: "\"bert\"".into(),
            });
        }
        if self.hidden_act != "gelu" {
            return Err(DropbertError::Unsupported {
                key: "hidden_act",
                found: self.hidden_act.clone(),
                expected: "\"gelu\" (exact erf GELU, as BERT uses)".into(),
            });
        }
        if self.position_embedding_type != "absolute" {
            return Err(DropbertError::Unsupported {
                key: "position_embedding_type",
                found: self.position_embedding_type.clone(),
                expected: "\"absolute\"".into(),
            });
        }
        if !self.tie_word_embeddings {
            return Err(DropbertError::Unsupported {
                key: "tie_word_embeddings",
                found: "false".into(),
                expected: "true (the MLM decoder shares the word embeddings)".into(),
            });
        }
        Ok(())
    }

    /// The run-time settings this checkpoint asks for, training dropout included.
    pub fn settings(&self) -> BertSettings {
        BertSettings {
            layer_norm_eps: self.layer_norm_eps as f32,
            initializer_range: self.initializer_range as f32,
            dropout: crate::nn::Dropout::new(
                self.hidden_dropout_prob as f32,
                self.attention_probs_dropout_prob as f32,
            ),
        }
    }
}
