use std::path::Path;

use luminal::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Backend;
use crate::{
    autograd::{add_backward, Gradient, TensorRef},
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
    hf::{load_weights, HfBertConfig, LoadReport, MissingPolicy},
    nn::{masked_lm_loss, BertForMaskedLM, BertInputs, DropoutSite, ParameterRef, Parameters},
    Result,
};

/// What one forward and backward pass of the masked-LM loss gives.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutputs {
    pub loss: f32,
    /// Cross-entropy per position, `[batch * seq]`, 0 where nothing is predicted.
    pub token_losses: Vec<f32>,
    /// One per parameter, in the order of [`GradientProgram::parameters`].
    pub gradients: Vec<Vec<f32>>,
}

/// `BertForMaskedLM`, its masked-LM loss and the backward pass, compiled for one backend.
pub struct GradientProgram<C: BertConfig> {
    // Boxed: graph tensors point at their graph, so it must not move.
    graph: Box<Graph>,
    inputs: BertInputs<C>,
    labels: GraphTensor<(C::Batch, C::Seq)>,
    loss: GraphTensor<()>,
    token_losses: GraphTensor<(C::Tokens,)>,
    gradients: Vec<Gradient>,
    dropout_sites: Vec<DropoutSite>,
    dropout_seed: u64,
    /// Steps run so far: with the seed, it fixes the next step's dropout masks.
    step: u64,
}

impl<C: BertConfig> GradientProgram<C> {
    /// Builds and compiles the program with the parameters unset.
    pub fn compile(backend: Backend, settings: &BertSettings) -> Result<Self> {
        let mut graph = Box::new(Graph::new());
        let mut inputs = BertInputs::<C>::new(&mut graph);
        let mut labels = graph.named_tensor::<(C::Batch, C::Seq)>("labels");
        let model = BertForMaskedLM::<C>::new(&mut graph, settings);
        let objective = masked_lm_loss::<C>(model.forward(&inputs), labels);
        let mut loss = objective.loss.retrieve();
        let mut token_losses = objective.token_losses.retrieve();
        let parameters = model.parameters("");
        for parameter in &parameters {
            graph.keep_tensors(parameter.id);
        }
        let mut gradients = add_backward(&mut graph, TensorRef::of(loss), &parameters)?;
        let mut dropout_sites = settings.dropout.sites();

        let mut remap: Vec<&mut NodeIndex> = vec![
            &mut inputs.input_ids.id,
            &mut inputs.token_type_ids.id,
            &mut inputs.attention_mask.id,
            &mut labels.id,
            &mut loss.id,
            &mut token_losses.id,
        ];
        for gradient in gradients.iter_mut() {
            remap.push(&mut gradient.parameter.id);
            remap.push(&mut gradient.tensor.id);
        }
        remap.extend(dropout_sites.iter_mut().map(|site| &mut site.id));
        backend.compile(&mut graph, remap)?;
        Ok(Self {
            graph,
            inputs,
            labels,
            loss,
            token_losses,
            gradients,
            dropout_sites,
            dropout_seed: 0,
            step: 0,
        })
    }

    /// Seeds the dropout masks and sets how many steps have run, so that a resumed run draws
    /// the masks an uninterrupted one would.
    pub fn set_dropout_position(&mut self, seed: u64, step: u64) {
        self.dropout_seed = seed;
        self.step = step;
    }

    /// Reads `dir`'s `config.json` (refusing one that does not match `C`), compiles, and loads
    /// the weights.
    pub fn from_checkpoint(
        dir: &Path,
        backend: Backend,
        policy: MissingPolicy<'_>,
    ) -> Result<(Self, LoadReport)> {
        let config = HfBertConfig::read(&dir.join("config.json"))?;
        config.check_matches::<C>()?;
        let settings = config.settings();
        let mut program = Self::compile(backend, &settings)?;
        let parameters = program.parameters();
        let (values, report) = load_weights(dir, &parameters, &settings, policy)?;
        program.set_parameters(values);
        Ok((program, report))
    }

    pub fn parameters(&self) -> Vec<ParameterRef> {
        self.gradients.iter().map(|g| g.parameter.clone()).collect()
    }

    /// Sets every parameter's values, in the order of [`parameters`](Self::parameters).
    pub fn set_parameters(&mut self, values: Vec<Vec<f32>>) {
        assert_eq!(values.len(), self.gradients.len());
        for (gradient, values) in self.gradients.iter().zip(values) {
            assert_eq!(
                values.len(),
                gradient.parameter.numel(),
                "{}",
                gradient.parameter.name
            );
            self.graph
                .set_tensor(gradient.parameter.id, 0, Tensor::new(values));
        }
    }

    /// Loss, per-position losses and gradients for one full batch; `labels` is `[batch * seq]`
    /// with -100 at positions that are not predicted.
    pub fn run(&mut self, batch: &TokenBatch, labels: &[i64]) -> StepOutputs {
        assert_eq!(labels.len(), C::DIMS.batch_size * C::DIMS.seq_len);
        let as_f32 = |values: &[u32]| values.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let feeds = [
            (self.inputs.input_ids.id, as_f32(&batch.input_ids)),
            (self.inputs.token_type_ids.id, as_f32(&batch.token_type_ids)),
            (self.inputs.attention_mask.id, as_f32(&batch.attention_mask)),
            (self.labels.id, labels.iter().map(|&l| l as f32).collect()),
        ];
        for (id, values) in feeds {
            self.graph.set_tensor(id, 0, Tensor::new(values));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.dropout_seed ^ self.step.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        for site in &self.dropout_sites {
            self.graph
                .set_tensor(site.id, 0, Tensor::new(site.sample(&mut rng)));
        }
        self.step += 1;
        self.graph.execute();
        let loss = self.loss.data()[0];
        let token_losses = self.token_losses.data();
        self.loss.drop();
        self.token_losses.drop();
        let gradients = self
            .gradients
            .iter()
            .map(|gradient| {
                let tensor = gradient.tensor.typed::<()>(&mut self.graph);
                let values = read_values(&tensor, gradient.parameter.numel());
                tensor.drop();
                values
            })
            .collect();
        StepOutputs {
            loss,
            token_losses,
            gradients,
        }
    }
}

/// The contiguous values of a retrieved output (its view may be any shape).
fn read_values(tensor: &GraphTensor<()>, len: usize) -> Vec<f32> {
    let data = tensor
        .graph()
        .get_tensor_ref(tensor.id, 0)
        .expect("outputs are retrieved")
        .data
        .as_any()
        .downcast_ref::<Vec<f32>>()
        .expect("CPU outputs are f32 buffers")
        .clone();
    debug_assert_eq!(data.len(), len);
    data
}
