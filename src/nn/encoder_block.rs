use luminal::prelude::*;

use super::{
    attention::BertAttention,
    feed_forward::BertFeedForward,
    layer_norm::LayerNorm,
    parameters::{ParameterRef, Parameters},
};
use crate::config::{BertConfig, BertSettings, BlockLayout};

/// `encoder.layer.N.*`: one transformer block, Post-LN (original BERT) or Pre-LN.
///
/// The two LayerNorms are named by where they act: Post-LN uses Hugging Face's names
/// (`attention.output.LayerNorm`, `output.LayerNorm`); Pre-LN uses DeepSpeed's
/// (`PreAttentionLayerNorm`, `PostAttentionLayerNorm`), so that a Pre-LN checkpoint can never be
/// mistaken for, or loaded as, a Post-LN one.
pub struct BertLayer<C: BertConfig> {
    pub attention: BertAttention<C>,
    pub attention_norm: LayerNorm<C::Hidden>,
    pub feed_forward: BertFeedForward<C>,
    pub feed_forward_norm: LayerNorm<C::Hidden>,
}

impl<C: BertConfig> BertLayer<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings) -> Self {
        Self {
            attention: BertAttention::new(cx, &settings.dropout),
            attention_norm: LayerNorm::new(cx, settings.layer_norm_eps),
            feed_forward: BertFeedForward::new(cx, &settings.dropout),
            feed_forward_norm: LayerNorm::new(cx, settings.layer_norm_eps),
        }
    }

    /// The block over all tokens.
    pub fn forward<S: Dimension>(
        &self,
        hidden: GraphTensor<(C::Batch, S, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, S)>,
    ) -> GraphTensor<(C::Batch, S, C::Hidden)> {
        self.forward_queries(hidden, hidden, mask_bias)
    }

    /// The block with its queries (and so its outputs) restricted to `queries`, attending over
    /// `keys_values`.
    pub fn forward_queries<Q: Dimension, K: Dimension>(
        &self,
        queries: GraphTensor<(C::Batch, Q, C::Hidden)>,
        keys_values: GraphTensor<(C::Batch, K, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, K)>,
    ) -> GraphTensor<(C::Batch, Q, C::Hidden)> {
        self.forward_scaled(queries, keys_values, mask_bias, None)
    }

    /// [`forward_queries`](Self::forward_queries) with the outputs of both sub-layers (attention
    /// and feed-forward, before their residual sums) multiplied by `scale`: how a Pre-LN block
    /// kept by progressive layer dropping compensates for the blocks skipped.
    pub fn forward_scaled<Q: Dimension, K: Dimension>(
        &self,
        queries: GraphTensor<(C::Batch, Q, C::Hidden)>,
        keys_values: GraphTensor<(C::Batch, K, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, K)>,
        scale: Option<GraphTensor<()>>,
    ) -> GraphTensor<(C::Batch, Q, C::Hidden)> {
        let scaled = |x: GraphTensor<(C::Batch, Q, C::Hidden)>| match scale {
            Some(scale) => x * scale.expand(),
            None => x,
        };
        match C::DIMS.layout {
            BlockLayout::PostLn => {
                let attended = self.attention_norm.forward(
                    scaled(self.attention.forward(queries, keys_values, mask_bias)) + queries,
                );
                self.feed_forward_norm
                    .forward(scaled(self.feed_forward.forward(attended)) + attended)
            }
            BlockLayout::PreLn => {
                let attended = queries
                    + scaled(self.attention.forward(
                        self.attention_norm.forward(queries),
                        self.attention_norm.forward(keys_values),
                        mask_bias,
                    ));
                attended
                    + scaled(
                        self.feed_forward
                            .forward(self.feed_forward_norm.forward(attended)),
                    )
            }
        }
    }
}

impl<C: BertConfig> Parameters for BertLayer<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.attention
            .collect_parameters(&format!("{prefix}attention."), out);
        self.feed_forward.collect_parameters(prefix, out);
        let (attention_norm, feed_forward_norm) = match C::DIMS.layout {
            BlockLayout::PostLn => ("attention.output.LayerNorm.", "output.LayerNorm."),
            BlockLayout::PreLn => ("PreAttentionLayerNorm.", "PostAttentionLayerNorm."),
        };
        self.attention_norm
            .collect_parameters(&format!("{prefix}{attention_norm}"), out);
        self.feed_forward_norm
            .collect_parameters(&format!("{prefix}{feed_forward_norm}"), out);
    }
}
