use serde::Serialize;

use crate::{
    config::{BertConfig, BertSettings},
    data::mlm_batches::MlmBatch,
    drop::DropPlan,
    runtime::{Backend, MaskedLmGraph},
    Result,
};

/// Masked-LM loss and accuracy over a validation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ValidationMetrics {
    /// Mean cross-entropy over all predicted positions.
    pub loss: f64,
    /// Share of predicted positions whose highest logit is the label.
    pub accuracy: f64,
    pub predictions: usize,
}

/// The forward pass and loss without dropout or updates, for validation.
pub struct EvaluationProgram<C: BertConfig> {
    graph: MaskedLmGraph<C>,
}

impl<C: BertConfig> EvaluationProgram<C> {
    pub fn compile(backend: Backend, settings: &BertSettings) -> Result<Self> {
        let mut graph =
            MaskedLmGraph::<C>::build(&settings.for_inference(), false, &DropPlan::none())?;
        graph.compile(backend, Vec::new())?;
        Ok(Self { graph })
    }

    /// Evaluates `weights` (in parameter order) on `batches`.
    pub fn evaluate(
        &mut self,
        weights: Vec<Vec<f32>>,
        batches: impl IntoIterator<Item = MlmBatch>,
    ) -> Result<ValidationMetrics> {
        self.graph.set_parameters(weights);
        let (mut loss_sum, mut correct, mut predictions) = (0f64, 0f64, 0usize);
        for batch in batches {
            if batch.predictions() == 0 {
                continue;
            }
            self.graph.feed(&batch.tokens, &batch.labels, 0, 0)?;
            self.graph.execute();
            let outputs = self.graph.take_loss_outputs().read();
            loss_sum += outputs.token_losses.iter().map(|&l| l as f64).sum::<f64>();
            correct += outputs.token_correct.iter().map(|&c| c as f64).sum::<f64>();
            predictions += batch.predictions();
        }
        let denominator = predictions.max(1) as f64;
        Ok(ValidationMetrics {
            loss: loss_sum / denominator,
            accuracy: correct / denominator,
            predictions,
        })
    }
}
