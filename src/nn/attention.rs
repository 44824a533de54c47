use luminal::prelude::*;

use super::{
    dropout::Dropout,
    linear::Linear,
    parameters::{ParameterRef, Parameters},
};
use crate::{config::BertConfig, ops::attention_probabilities};

/// Additive attention bias from a `[batch, keys]` 0/1 padding mask: 0 where a key may be attended,
/// the most negative float where it is padding (as Hugging Face BERT does).
pub fn attention_mask_bias<B: Dimension, K: Dimension>(
    attention_mask: GraphTensor<(B, K)>,
) -> GraphTensor<(B, K)> {
    (attention_mask * -1.0 + 1.0) * f32::MIN
}

/// `attention.self.*`: multi-head scaled dot-product attention. Queries and keys/values may come
/// from different token sets (the split layer of token dropping).
pub struct BertSelfAttention<C: BertConfig> {
    pub query: Linear<C::Hidden, C::Hidden>,
    pub key: Linear<C::Hidden, C::Hidden>,
    pub value: Linear<C::Hidden, C::Hidden>,
    pub dropout: Dropout,
}

impl<C: BertConfig> BertSelfAttention<C> {
    pub fn new(cx: &mut Graph, dropout: &Dropout) -> Self {
        Self {
            query: Linear::new(cx),
            key: Linear::new(cx),
            value: Linear::new(cx),
            dropout: dropout.clone(),
        }
    }

    pub fn forward<Q: Dimension, K: Dimension>(
        &self,
        queries: GraphTensor<(C::Batch, Q, C::Hidden)>,
        keys_values: GraphTensor<(C::Batch, K, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, K)>,
    ) -> GraphTensor<(C::Batch, Q, C::Hidden)> {
        let q = self
            .query
            .forward(queries)
            .reshape::<(C::Batch, Q, C::Heads, C::HeadDim)>()
            .permute::<(C::Batch, C::Heads, Q, C::HeadDim), Axes4<0, 2, 1, 3>>();
        let k = self
            .key
            .forward(keys_values)
            .reshape::<(C::Batch, K, C::Heads, C::HeadDim)>()
            .permute::<(C::Batch, C::Heads, C::HeadDim, K), Axes4<0, 2, 3, 1>>();
        let v = self
            .value
            .forward(keys_values)
            .reshape::<(C::Batch, K, C::Heads, C::HeadDim)>()
            .permute::<(C::Batch, C::Heads, K, C::HeadDim), Axes4<0, 2, 1, 3>>();
        let scale = 1.0 / (C::DIMS.head_dim() as f32).sqrt();
        let scores = q.matmul(k);
        let dropout = self.dropout.attention_site(scores);
        attention_probabilities(scores, mask_bias, scale, dropout)
            .matmul(v)
            .permute::<(C::Batch, Q, C::Heads, C::HeadDim), Axes4<0, 2, 1, 3>>()
            .reshape::<(C::Batch, Q, C::Hidden)>()
    }
}

impl<C: BertConfig> Parameters for BertSelfAttention<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.query
            .collect_parameters(&format!("{prefix}query."), out);
        self.key.collect_parameters(&format!("{prefix}key."), out);
        self.value
            .collect_parameters(&format!("{prefix}value."), out);
    }
}

/// `attention.*` without its LayerNorm (which [`BertLayer`](super::BertLayer) places by layout):
/// self-attention followed by the output projection.
pub struct BertAttention<C: BertConfig> {
    pub self_attention: BertSelfAttention<C>,
    pub output_dense: Linear<C::Hidden, C::Hidden>,
    pub dropout: Dropout,
}

impl<C: BertConfig> BertAttention<C> {
    pub fn new(cx: &mut Graph, dropout: &Dropout) -> Self {
        Self {
            self_attention: BertSelfAttention::new(cx, dropout),
            output_dense: Linear::new(cx),
            dropout: dropout.clone(),
        }
    }

    pub fn forward<Q: Dimension, K: Dimension>(
        &self,
        queries: GraphTensor<(C::Batch, Q, C::Hidden)>,
        keys_values: GraphTensor<(C::Batch, K, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, K)>,
    ) -> GraphTensor<(C::Batch, Q, C::Hidden)> {
        self.dropout
            .hidden(self.output_dense.forward(self.self_attention.forward(
                queries,
                keys_values,
                mask_bias,
            )))
    }
}

impl<C: BertConfig> Parameters for BertAttention<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.self_attention
            .collect_parameters(&format!("{prefix}self."), out);
        self.output_dense
            .collect_parameters(&format!("{prefix}output.dense."), out);
    }
}
