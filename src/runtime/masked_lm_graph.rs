use luminal::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Backend;
use crate::{
    autograd::{add_backward, Gradient, TensorRef},
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
    nn::{masked_lm_loss, BertForMaskedLM, BertInputs, DropoutSite, ParameterRef, Parameters},
    DropbertError, Result,
};

/// `BertForMaskedLM` with its masked-LM loss (and, for training, its backward pass) on one
/// graph, before compilation: what the gradient, training and evaluation programs share.
pub struct MaskedLmGraph<C: BertConfig> {
    // Boxed: graph tensors point at their graph, so it must not move.
    pub graph: Box<Graph>,
    pub inputs: BertInputs<C>,
    /// Flat token indexes of the predicted positions; unused slots point at token 0.
    pub prediction_positions: GraphTensor<(C::Predictions,)>,
    /// The label of each prediction slot; -100 for unused slots.
    pub prediction_labels: GraphTensor<(C::Predictions,)>,
    pub loss: GraphTensor<()>,
    pub token_losses: GraphTensor<(C::Predictions,)>,
    pub token_correct: GraphTensor<(C::Predictions,)>,
    pub parameters: Vec<ParameterRef>,
    /// Empty unless built with the backward pass.
    pub gradients: Vec<Gradient>,
    pub dropout_sites: Vec<DropoutSite>,
}

impl<C: BertConfig> MaskedLmGraph<C> {
    pub fn build(settings: &BertSettings, with_backward: bool) -> Result<Self> {
        let mut graph = Box::new(Graph::new());
        let inputs = BertInputs::<C>::new(&mut graph);
        let prediction_positions = graph.named_tensor::<(C::Predictions,)>("prediction positions");
        let prediction_labels = graph.named_tensor::<(C::Predictions,)>("prediction labels");
        let model = BertForMaskedLM::<C>::new(&mut graph, settings);
        let objective = masked_lm_loss::<C>(
            model.forward_at(&inputs, prediction_positions),
            prediction_labels,
        );
        let parameters = model.parameters("");
        for parameter in &parameters {
            graph.keep_tensors(parameter.id);
        }
        let gradients = if with_backward {
            add_backward(&mut graph, TensorRef::of(objective.loss), &parameters)?
        } else {
            Vec::new()
        };
        Ok(Self {
            graph,
            inputs,
            prediction_positions,
            prediction_labels,
            loss: objective.loss.retrieve(),
            token_losses: objective.token_losses.retrieve(),
            token_correct: objective.token_correct.retrieve(),
            parameters,
            gradients,
            dropout_sites: settings.dropout.sites(),
        })
    }

    /// Compiles the graph for `backend`; `extra` are further node ids the caller keeps using.
    pub fn compile(&mut self, backend: Backend, extra: Vec<&mut NodeIndex>) -> Result<()> {
        // The graph leaves its box only for the call; its address, which every graph tensor
        // holds, does not change.
        let mut graph = std::mem::replace(&mut self.graph, Box::new(Graph::new()));
        let mut ids = self.ids_mut();
        ids.extend(extra);
        let result = backend.compile(&mut graph, ids);
        self.graph = graph;
        result
    }

    /// Every node id the programs keep using, for the compiler to remap.
    fn ids_mut(&mut self) -> Vec<&mut NodeIndex> {
        let mut ids: Vec<&mut NodeIndex> = vec![
            &mut self.inputs.input_ids.id,
            &mut self.inputs.token_type_ids.id,
            &mut self.inputs.attention_mask.id,
            &mut self.prediction_positions.id,
            &mut self.prediction_labels.id,
            &mut self.loss.id,
            &mut self.token_losses.id,
            &mut self.token_correct.id,
        ];
        ids.extend(self.parameters.iter_mut().map(|p| &mut p.id));
        for gradient in self.gradients.iter_mut() {
            ids.push(&mut gradient.parameter.id);
            ids.push(&mut gradient.tensor.id);
        }
        ids.extend(self.dropout_sites.iter_mut().map(|site| &mut site.id));
        ids
    }

    /// Sets every parameter's values, in the order of `parameters`.
    pub fn set_parameters(&mut self, values: Vec<Vec<f32>>) {
        assert_eq!(values.len(), self.parameters.len());
        for (parameter, values) in self.parameters.iter().zip(values) {
            assert_eq!(values.len(), parameter.numel(), "{}", parameter.name);
            self.graph.set_tensor(parameter.id, 0, Tensor::new(values));
        }
    }

    /// Feeds one batch, its labels (`[batch * seq]`, -100 = not predicted) and the dropout
    /// masks of step `step` under `seed`. Fails where the batch predicts more positions than
    /// the compiled capacity, `batch * ceil(0.15 * seq)`.
    pub fn feed(&mut self, batch: &TokenBatch, labels: &[i64], seed: u64, step: u64) -> Result<()> {
        assert_eq!(labels.len(), C::DIMS.batch_size * C::DIMS.seq_len);
        let capacity = C::DIMS.max_predictions();
        let predicted: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] != -100).collect();
        if predicted.len() > capacity {
            return Err(DropbertError::InvalidInput(format!(
                "the batch predicts {} positions; {} is compiled for at most {capacity} (batch {} x ceil(0.15 x seq {}))",
                predicted.len(),
                C::NAME,
                C::DIMS.batch_size,
                C::DIMS.seq_len
            )));
        }
        let mut positions = vec![0f32; capacity];
        let mut slot_labels = vec![-100f32; capacity];
        for (slot, &position) in predicted.iter().enumerate() {
            positions[slot] = position as f32;
            slot_labels[slot] = labels[position] as f32;
        }
        self.inputs.feed(&mut self.graph, batch);
        self.graph
            .set_tensor(self.prediction_positions.id, 0, Tensor::new(positions));
        self.graph
            .set_tensor(self.prediction_labels.id, 0, Tensor::new(slot_labels));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for site in &self.dropout_sites {
            self.graph
                .set_tensor(site.id, 0, Tensor::new(site.sample(&mut rng)));
        }
        Ok(())
    }

    /// Reads and clears the loss outputs of the last execution.
    pub fn take_loss_outputs(&mut self) -> LossOutputs {
        let outputs = LossOutputs {
            loss: self.loss.data()[0],
            token_losses: self.token_losses.data(),
            token_correct: self.token_correct.data(),
        };
        self.loss.drop();
        self.token_losses.drop();
        self.token_correct.drop();
        outputs
    }
}

/// The loss outputs of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutputs {
    pub loss: f32,
    pub token_losses: Vec<f32>,
    pub token_correct: Vec<f32>,
}
