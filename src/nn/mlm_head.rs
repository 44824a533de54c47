use luminal::prelude::*;

use super::{
    layer_norm::LayerNorm,
    linear::Linear,
    parameters::{new_parameter, parameter_ref, ParameterInit, ParameterRef, Parameters},
};
use crate::config::{BertConfig, BertSettings};
use crate::ops::bias_gelu;

/// The logits as two terms: the decoder's `product` (shape `P`, the logit width `W` last) and
/// the `bias` added to each of its rows.
pub struct DecoderTerms<P: Shape, W: Dimension> {
    pub product: GraphTensor<P>,
    pub bias: GraphTensor<(W,)>,
}

/// `cls.predictions.*`: transform (dense, GELU, LayerNorm), then the decoder, whose weight is the
/// word-embedding matrix (tied, so it is not a parameter of its own), plus an output bias. The
/// decoder runs over [`BertDims::logit_width`](crate::config::BertDims::logit_width) columns:
/// the weight and bias are read with zero rows appended, so the logits past the vocabulary are 0
/// and their gradients never reach the parameters.
pub struct BertMlmHead<C: BertConfig> {
    pub transform_dense: Linear<C::Hidden, C::Hidden>,
    pub transform_norm: LayerNorm<C::Hidden>,
    pub bias: GraphTensor<(C::Vocab,)>,
}

impl<C: BertConfig> BertMlmHead<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings) -> Self {
        Self {
            transform_dense: Linear::new(cx),
            transform_norm: LayerNorm::new(cx, settings.layer_norm_eps),
            bias: new_parameter(cx, "cls.predictions.bias"),
        }
    }

    /// Vocabulary logits of every position of `hidden`, padded to the logit width.
    pub fn forward<B: Dimension, S: Dimension>(
        &self,
        hidden: GraphTensor<(B, S, C::Hidden)>,
        word_embeddings: GraphTensor<(C::Vocab, C::Hidden)>,
    ) -> GraphTensor<(B, S, C::LogitWidth)> {
        let DecoderTerms { product, bias } = self.decoder_terms(hidden, word_embeddings);
        product + bias.expand::<(B, S, C::LogitWidth), Axes2<0, 1>>()
    }

    /// The two terms of the logits of `hidden`'s positions, padded to the logit width: the
    /// decoder's product and its bias. The masked-LM loss takes them apart and adds the bias as
    /// it reads each row, so the biased logits are never written out.
    pub fn decoder_terms<B: Dimension, S: Dimension>(
        &self,
        hidden: GraphTensor<(B, S, C::Hidden)>,
        word_embeddings: GraphTensor<(C::Vocab, C::Hidden)>,
    ) -> DecoderTerms<(B, S, C::LogitWidth), C::LogitWidth> {
        let dense = &self.transform_dense;
        let transformed = self
            .transform_norm
            .forward(bias_gelu(dense.product(hidden), dense.bias));
        let padding = C::DIMS.logit_width() - C::DIMS.vocab_size;
        // Copies, not views: the contraction and the fused kernels read unpadded buffers. The
        // bias is a vector; the weight's copy replaces the bf16 copy the product needs anyway.
        let decoder = word_embeddings
            .pad::<(C::LogitWidth, C::Hidden), usize, usize>(&[(0, padding), (0, 0)])
            .contiguous();
        let bias = self
            .bias
            .pad::<(C::LogitWidth,), usize, usize>(&[(0, padding)])
            .contiguous();
        let product =
            transformed.matmul(decoder.permute::<(C::Hidden, C::LogitWidth), Axes2<1, 0>>());
        DecoderTerms { product, bias }
    }
}

impl<C: BertConfig> Parameters for BertMlmHead<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.transform_dense
            .collect_parameters(&format!("{prefix}transform.dense."), out);
        self.transform_norm
            .collect_parameters(&format!("{prefix}transform.LayerNorm."), out);
        out.push(parameter_ref(
            prefix,
            "bias",
            self.bias,
            ParameterInit::Zeros,
        ));
    }
}
