use std::path::Path;

use super::{masked_lm_graph::MaskedLmGraph, Backend};
use crate::{
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
    drop::{DropPlan, StepGates},
    hf::{load_weights, HfBertConfig, LoadReport, MissingPolicy},
    nn::ParameterRef,
    Result,
};

/// What one forward and backward pass of the masked-LM loss gives.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutputs {
    pub loss: f32,
    /// Cross-entropy per prediction, in position order, then 0 for unused prediction slots.
    pub token_losses: Vec<f32>,
    /// One per parameter, in the order of [`GradientProgram::parameters`].
    pub gradients: Vec<Vec<f32>>,
    /// Token dropping: the importance table after the step's update.
    pub importance: Option<Vec<f32>>,
    /// Token dropping: the kept positions, `[batch * kept]` flat token indexes.
    pub kept_positions: Vec<usize>,
}

/// `BertForMaskedLM`, its masked-LM loss and the backward pass, compiled for one backend, with
/// the gradients read back to the host.
pub struct GradientProgram<C: BertConfig> {
    graph: MaskedLmGraph<C>,
    dropout_seed: u64,
    /// Steps run so far: with the seed, it fixes the next step's dropout masks.
    step: u64,
}

impl<C: BertConfig> GradientProgram<C> {
    /// Builds and compiles the program with the parameters unset; `plan` says what the step
    /// drops.
    pub fn compile(backend: Backend, settings: &BertSettings, plan: &DropPlan) -> Result<Self> {
        let mut graph = MaskedLmGraph::<C>::build(settings, true, plan)?;
        for gradient in &graph.gradients {
            graph.graph.keep_tensors(gradient.tensor.id);
            graph.graph.retrieve_tensors(gradient.tensor.id);
        }
        graph.compile(backend, Vec::new())?;
        Ok(Self {
            graph,
            dropout_seed: 0,
            step: 0,
        })
    }

    /// Reads `dir`'s `config.json` (refusing one that does not match `C`), compiles, and loads
    /// the weights. Dropout follows the checkpoint's rates.
    pub fn from_checkpoint(
        dir: &Path,
        backend: Backend,
        policy: MissingPolicy<'_>,
        plan: &DropPlan,
    ) -> Result<(Self, LoadReport)> {
        let config = HfBertConfig::read(&dir.join("config.json"))?;
        config.check_matches::<C>()?;
        let settings = config.settings();
        let mut program = Self::compile(backend, &settings, plan)?;
        let (values, report) = load_weights(dir, &program.graph.parameters, &settings, policy)?;
        program.graph.set_parameters(values);
        Ok((program, report))
    }

    /// Seeds the dropout masks and sets how many steps have run, so that a resumed run draws
    /// the masks an uninterrupted one would.
    pub fn set_dropout_position(&mut self, seed: u64, step: u64) {
        self.dropout_seed = seed;
        self.step = step;
    }

    pub fn parameters(&self) -> Vec<ParameterRef> {
        self.graph.parameters.clone()
    }

    /// Sets every parameter's values, in the order of [`parameters`](Self::parameters).
    pub fn set_parameters(&mut self, values: Vec<Vec<f32>>) {
        self.graph.set_parameters(values);
    }

    /// Sets the importance table the next step selects tokens with (token dropping).
    pub fn set_importance(&mut self, table: Vec<f32>) {
        self.graph.set_importance(table);
    }

    /// Sets the layer gates of the next step (layer dropping).
    pub fn set_gates(&mut self, gates: &StepGates) {
        self.graph.set_gates(gates);
    }

    /// Loss, per-position losses and gradients for one full batch; `labels` is `[batch * seq]`
    /// with -100 at positions that are not predicted.
    pub fn run(&mut self, batch: &TokenBatch, labels: &[i64]) -> Result<StepOutputs> {
        self.graph
            .feed(batch, labels, self.dropout_seed, self.step)?;
        self.step += 1;
        self.graph.execute();
        let losses = self.graph.take_loss_outputs().read();
        let graph = &mut self.graph.graph;
        let gradients = self
            .graph
            .gradients
            .iter()
            .map(|gradient| {
                let values =
                    super::host_values(graph, gradient.tensor.id).expect("gradients are retrieved");
                debug_assert_eq!(values.len(), gradient.parameter.numel());
                values
            })
            .collect();
        Ok(StepOutputs {
            loss: losses.loss,
            token_losses: losses.token_losses,
            gradients,
            importance: self.graph.importance(),
            kept_positions: self.graph.kept_positions(),
        })
    }
}
