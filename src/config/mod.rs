//! Compile-time model configuration.
//!
//! A BERT configuration is a type implementing [`BertConfig`]: every dimension is a luminal
//! `Const<N>` so that the graph of each configuration is specialized to its sizes. Configurations
//! are declared with [`bert_config!`](crate::bert_config), which derives the head size and the
//! kept/dropped token counts by const arithmetic and rejects invalid configurations at compile time.

mod block_layout;
mod checks;
mod declare;
mod dims;
mod settings;

pub use block_layout::BlockLayout;
pub use checks::validate;
pub use dims::{BertDims, LayerDropDims, TokenDropDims, LOGIT_WIDTH_MULTIPLE};
pub use settings::BertSettings;

use luminal::prelude::Dimension;

/// A BERT model configuration fixed at compile time.
pub trait BertConfig: 'static {
    /// The configuration's name, as the model binary reports it.
    const NAME: &'static str;
    /// The numbers behind the dimension types, for run-time checks and reports.
    const DIMS: BertDims;

    type Vocab: Dimension;
    /// The masked-LM logits' width: `Vocab` rounded up (see [`BertDims::logit_width`]).
    type LogitWidth: Dimension;
    type Hidden: Dimension;
    type Heads: Dimension;
    /// `Hidden / Heads`.
    type HeadDim: Dimension;
    type Intermediate: Dimension;
    type MaxPositions: Dimension;
    type TypeVocab: Dimension;
    /// Tokens per sequence, as compiled.
    type Seq: Dimension;
    /// Sequences per batch, as compiled.
    type Batch: Dimension;
    /// `Batch * Seq`: the tokens of one batch, flattened.
    type Tokens: Dimension;
    /// Masked-LM predictions one batch holds at most: `Batch * ceil(0.15 * Seq)`, BERT's
    /// `max_predictions_per_seq` for the sequence length.
    type Predictions: Dimension;
    /// Tokens the middle layers keep under token dropping (`Seq` when token dropping is off).
    type Kept: Dimension;
    /// `Seq - Kept`.
    type Dropped: Dimension;
    /// `Batch * Kept`: the kept tokens of one batch, flattened.
    type KeptTokens: Dimension;
}
