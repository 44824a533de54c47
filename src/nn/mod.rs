//! The BERT model as a luminal graph. The module tree mirrors Hugging Face's `BertForMaskedLM`, so
//! every parameter's path here is its name in a checkpoint. Nothing in this module names a
//! backend: the graph it builds is compiled for the CPU or CUDA by [`crate::runtime`].
mod attention;
mod bert;
mod dropout;
mod embeddings;
mod encoder;
mod encoder_block;
mod encoder_drops;
mod feed_forward;
mod gather;
mod layer_norm;
mod linear;
mod masked_lm_loss;
mod mlm_head;
mod parameters;
mod pooler;

pub use crate::ops::gelu;
pub use attention::{attention_mask_bias, BertAttention, BertSelfAttention};
pub use bert::{BertForMaskedLM, BertInputs, BertModel};
pub use dropout::{step_key, Dropout};
pub use embeddings::BertEmbeddings;
pub use encoder::BertEncoder;
pub use encoder_block::BertLayer;
pub use encoder_drops::{EncoderDrops, LayerGates};
pub use feed_forward::BertFeedForward;
pub use gather::gather_rows;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use masked_lm_loss::{masked_lm_loss, MaskedLmLoss, PredictionLogits};
pub use mlm_head::{BertMlmHead, DecoderTerms};
pub use parameters::{ParameterInit, ParameterRef, Parameters};
pub use pooler::BertPooler;
