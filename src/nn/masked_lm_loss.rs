use luminal::prelude::*;

use super::mlm_head::DecoderTerms;
use crate::{
    config::BertConfig,
    ops::{cross_entropy, label_is_argmax},
};

/// The logits of the predicted positions, `[predictions, logit width]`, as two terms: the
/// decoder's product and the bias added to each of its rows (see
/// [`BertMlmHead::decoder_terms`](super::BertMlmHead::decoder_terms)).
pub type PredictionLogits<C> = DecoderTerms<
    (
        <C as BertConfig>::Predictions,
        <C as BertConfig>::LogitWidth,
    ),
    <C as BertConfig>::LogitWidth,
>;

/// Mean cross-entropy of the predicted positions, as `BertForMaskedLM(labels=...)` computes it.
pub struct MaskedLmLoss<C: BertConfig> {
    /// Scalar mean over predicted positions.
    pub loss: GraphTensor<()>,
    /// Cross-entropy of every prediction slot, 0 for unused slots (token dropping's importance
    /// update reads these).
    pub token_losses: GraphTensor<(C::Predictions,)>,
    /// 1 where a prediction's highest logit is its label (ties count), else 0.
    pub token_correct: GraphTensor<(C::Predictions,)>,
}

/// `logits` are those of the predicted positions (unused slots hold label -100), their columns
/// past the vocabulary padding; `labels` holds the original id of each prediction.
pub fn masked_lm_loss<C: BertConfig>(
    logits: PredictionLogits<C>,
    labels: GraphTensor<(C::Predictions,)>,
) -> MaskedLmLoss<C> {
    let DecoderTerms { product, bias } = logits;
    let predicted = -labels.less_than(labels.graph().constant(0.0).expand()) + 1.0;
    // Both ops give 0 for unused slots, and the loss no gradient there.
    let vocab = C::DIMS.vocab_size;
    let token_losses = cross_entropy(product, bias, labels, vocab);
    let token_correct = label_is_argmax(product, bias, labels, vocab);
    let loss = token_losses.sum_reduce::<(), Axis<0>>() / predicted.sum_reduce::<(), Axis<0>>();
    MaskedLmLoss {
        loss,
        token_losses,
        token_correct,
    }
}
