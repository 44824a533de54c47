use luminal::prelude::*;

use crate::{config::BertConfig, ops::pick_columns};

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

/// `logits` are those of the predicted positions (unused slots hold label -100); `labels` holds
/// the original id of each prediction.
pub fn masked_lm_loss<C: BertConfig>(
    logits: GraphTensor<(C::Predictions, C::Vocab)>,
    labels: GraphTensor<(C::Predictions,)>,
) -> MaskedLmLoss<C> {
    let shifted = logits
        - logits
            .max_reduce::<(C::Predictions,), Axis<1>>()
            .expand::<(C::Predictions, C::Vocab), Axis<1>>();
    let log_normalizer = shifted
        .exp()
        .sum_reduce::<(C::Predictions,), Axis<1>>()
        .ln();
    let predicted = -labels.less_than(labels.graph().constant(0.0).expand()) + 1.0;
    // shifted = logits - max, so the label's shifted logit is 0 exactly when it is the maximum.
    let label_logit = pick_columns(shifted, labels);
    let token_losses = (log_normalizer - label_logit) * predicted;
    let token_correct =
        (-label_logit.less_than(label_logit.graph().constant(0.0).expand()) + 1.0) * predicted;
    let loss = token_losses.sum_reduce::<(), Axis<0>>() / predicted.sum_reduce::<(), Axis<0>>();
    MaskedLmLoss {
        loss,
        token_losses,
        token_correct,
    }
}
