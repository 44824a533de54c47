//! The optimizer a trainer drives: it adds one update subgraph for all parameters to the training
//! graph and keeps parameters and optimizer state resident in that graph between steps.
//!
//! Residency: every parameter and state tensor is a kept graph input, and its new value is a kept
//! (not retrieved) graph output (one of the outputs of a fused update op, for AdamW). After each
//! execution [`Optimizer::finish_step`] moves each output's buffer into its input's slot, so the
//! next step reads it there. On
//! CUDA those buffers are device memory: luminal_cuda's copy-to-device op after each input finds
//! data already on the device and hands it on (at most a device-to-device copy), and outputs that
//! are kept but not retrieved get no copy back, so a step moves only the three step scalars to the
//! device and the gradient norm (one float) back.
use std::collections::{BTreeMap, BTreeSet};

use luminal::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    adamw::AdamW,
    clipping::{clip_scale, global_norm},
    decay::decays,
    flat::{flat_view, flatten, static_shape, FlatTensor},
    lamb::Lamb,
    schedule::LearningRateSchedule,
    step_scalars::{StepScalarValues, StepScalars},
    update::{NodeOutput, UpdateInputs, UpdateRule},
};
use crate::{
    nn::ParameterRef,
    runtime::{host_values, TakenOutput},
    DropbertError, Result,
};

/// Which update rule, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum Algorithm {
    #[serde(rename = "adamw")]
    AdamW(AdamW),
    #[serde(rename = "lamb")]
    Lamb(Lamb),
}

impl Algorithm {
    fn rule(&self) -> &dyn UpdateRule {
        match self {
            Algorithm::AdamW(rule) => rule,
            Algorithm::Lamb(rule) => rule,
        }
    }
}

/// Everything that decides the updates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub algorithm: Algorithm,
    pub peak_learning_rate: f32,
    pub schedule: LearningRateSchedule,
    /// Global gradient-norm clipping threshold; `None` leaves gradients as they are.
    pub max_grad_norm: Option<f32>,
}

impl Default for OptimizerSettings {
    /// BERT's pretraining recipe: AdamW (0.9, 0.999, 1e-6, decay 0.01), peak 1e-4, 10k warm-up
    /// steps of 1M with linear decay, gradients clipped to norm 1.
    fn default() -> Self {
        Self {
            algorithm: Algorithm::AdamW(AdamW::default()),
            peak_learning_rate: 1e-4,
            schedule: LearningRateSchedule::LinearWarmupLinearDecay {
                warmup_steps: 10_000,
                total_steps: 1_000_000,
            },
            max_grad_norm: Some(1.0),
        }
    }
}

/// A parameter and the graph tensor holding its gradient (e.g. autograd's output).
#[derive(Clone)]
pub struct ParameterGradient {
    pub parameter: ParameterRef,
    /// The gradient as a flat vector (through a contiguous copy where its view needed one).
    pub gradient: FlatTensor,
    /// The node of the gradient as given.
    pub source: NodeIndex,
}

impl ParameterGradient {
    /// Pairs `parameter` with `gradient`, which must have the parameter's shape (any view of it:
    /// a permuted or broadcast gradient is made contiguous first). Untyped gradients, such as
    /// autograd's `TensorRef`s, pass as `GraphTensor<()>` carrying their view
    /// (`tensor_ref.typed::<()>(graph)`): only the view's shape is checked.
    pub fn new<S: Shape>(parameter: ParameterRef, gradient: GraphTensor<S>) -> Result<Self> {
        let shape = static_shape(&gradient.shape);
        if shape.as_deref() != Some(parameter.shape.as_slice()) {
            return Err(DropbertError::InvalidInput(format!(
                "the gradient of {} has shape {:?}, expected {:?}",
                parameter.name, shape, parameter.shape
            )));
        }
        Ok(Self {
            gradient: flatten(gradient),
            source: gradient.id,
            parameter,
        })
    }
}

/// A tensor that lives in the graph across steps: read from `input`, rewritten to `output` by
/// each execution, and moved back to `input` by [`Optimizer::finish_step`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub input: NodeIndex,
    pub output: NodeOutput,
}

impl ResidentTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// What one step did, for logging.
#[derive(Debug)]
pub struct StepReport {
    /// The step just taken, counted from 0.
    pub step: u64,
    pub learning_rate: f32,
    /// The global gradient norm before clipping, taken out of the program to be read when needed
    /// (see [`grad_norm`](Self::grad_norm)).
    pub taken_grad_norm: Option<TakenOutput>,
}

impl StepReport {
    /// The global gradient norm before clipping; `None` where the step did not compute it.
    /// Waits for the step to end, where it runs on a device.
    pub fn grad_norm(&self) -> Option<f32> {
        self.taken_grad_norm
            .as_ref()
            .and_then(|norm| norm.values().first().copied())
    }
}

/// The update subgraph of a training graph and the handles to drive it.
///
/// Each step: [`prepare_step`](Self::prepare_step), `graph.execute()`,
/// [`finish_step`](Self::finish_step). Before the first step the parameters must be set (as for
/// any forward program) and the state zeroed with [`reset_state`](Self::reset_state) or loaded
/// with [`load_state`](Self::load_state).
pub struct Optimizer {
    settings: OptimizerSettings,
    scalars: StepScalars,
    grad_norm: GraphTensor<R0>,
    parameters: Vec<ResidentTensor>,
    state: Vec<ResidentTensor>,
    steps_taken: u64,
}

/// The suffixes of the two state tensors of a parameter, as in PyTorch's Adam state dict.
pub const STATE_SUFFIXES: [&str; 2] = ["exp_avg", "exp_avg_sq"];

impl Optimizer {
    /// Adds the update of every parameter in `gradients` to `graph`: global clipping (if set), the
    /// update rule, weight decay by [`decays`]. Creates the step-scalar inputs and, per parameter,
    /// state inputs `<name>.exp_avg` and `<name>.exp_avg_sq`; all new values are kept outputs.
    ///
    /// The gradients are consumed inside the graph, so their nodes are unmarked for retrieval and
    /// keeping (autograd marks them): on CUDA they never travel to the host, and no step can
    /// read a stale gradient left over from the one before.
    pub fn build(
        graph: &mut Graph,
        gradients: Vec<ParameterGradient>,
        settings: OptimizerSettings,
    ) -> Result<Self> {
        if gradients.is_empty() {
            return Err(DropbertError::InvalidInput(
                "an optimizer needs at least one parameter".into(),
            ));
        }
        let mut names = BTreeSet::new();
        for entry in &gradients {
            if !names.insert(entry.parameter.name.as_str()) {
                return Err(DropbertError::InvalidInput(format!(
                    "parameter {} is listed twice",
                    entry.parameter.name
                )));
            }
        }
        for entry in &gradients {
            graph.to_retrieve.remove(&entry.source);
            graph.no_delete.remove(&entry.source);
        }
        let rule = settings.algorithm.rule();
        let scalars = StepScalars::new(graph);

        let raw: Vec<FlatTensor> = gradients.iter().map(|entry| entry.gradient).collect();
        let norm = global_norm(&raw);
        let gradient_scale = settings
            .max_grad_norm
            .map(|max_norm| clip_scale(norm, max_norm));
        let grad_norm = norm.retrieve();

        let mut state_names = Vec::with_capacity(gradients.len());
        let inputs: Vec<UpdateInputs> = gradients
            .iter()
            .map(|entry| {
                let parameter = &entry.parameter;
                let len = parameter.numel();
                let [(exp_avg_name, exp_avg), (exp_avg_sq_name, exp_avg_sq)] =
                    STATE_SUFFIXES.map(|suffix| {
                        let name = format!("{}.{suffix}", parameter.name);
                        let input = graph.named_tensor::<(Dyn<'-'>,)>(&name);
                        (name, flat_view(graph, input.id, len))
                    });
                state_names.push([exp_avg_name, exp_avg_sq_name]);
                UpdateInputs {
                    parameter: flat_view(graph, parameter.id, len),
                    gradient: entry.gradient,
                    exp_avg,
                    exp_avg_sq,
                    decays: decays(&parameter.name),
                }
            })
            .collect();
        let outputs = rule.update_all(&inputs, gradient_scale, &scalars);

        let mut parameters = Vec::with_capacity(gradients.len());
        let mut state = Vec::with_capacity(2 * gradients.len());
        for (((entry, input), output), [exp_avg_name, exp_avg_sq_name]) in
            gradients.iter().zip(&inputs).zip(outputs).zip(state_names)
        {
            let shape = &entry.parameter.shape;
            let mut resident = |name: String, input: FlatTensor, output: NodeOutput| {
                hand_over(graph, input.id, output.node);
                ResidentTensor {
                    name,
                    shape: shape.clone(),
                    input: input.id,
                    output,
                }
            };
            parameters.push(resident(
                entry.parameter.name.clone(),
                input.parameter,
                output.parameter,
            ));
            state.push(resident(exp_avg_name, input.exp_avg, output.exp_avg));
            state.push(resident(
                exp_avg_sq_name,
                input.exp_avg_sq,
                output.exp_avg_sq,
            ));
        }
        Ok(Self {
            settings,
            scalars,
            grad_norm,
            parameters,
            state,
            steps_taken: 0,
        })
    }

    /// Every node id this optimizer holds, for the remap list of `Graph::compile` (alongside the
    /// trainer's own ids, including the parameters' `ParameterRef::id`s).
    pub fn ids_mut(&mut self) -> Vec<&mut NodeIndex> {
        let mut ids: Vec<&mut NodeIndex> = self.scalars.ids_mut().into_iter().collect();
        ids.push(&mut self.grad_norm.id);
        for tensor in self.parameters.iter_mut().chain(self.state.iter_mut()) {
            ids.push(&mut tensor.input);
            ids.push(&mut tensor.output.node);
        }
        ids
    }

    pub fn settings(&self) -> &OptimizerSettings {
        &self.settings
    }

    /// Updates done so far; the next step is this one (0-based) in the schedule.
    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    /// The learning rate the next step uses.
    pub fn learning_rate(&self) -> f32 {
        self.settings
            .schedule
            .learning_rate(self.settings.peak_learning_rate, self.steps_taken)
    }

    pub fn step_scalars(&self) -> &StepScalars {
        &self.scalars
    }

    /// The global gradient-norm output (before clipping), a retrieved scalar.
    pub fn grad_norm_tensor(&self) -> GraphTensor<R0> {
        self.grad_norm
    }

    /// The parameters this optimizer updates, with their update outputs.
    pub fn parameters(&self) -> &[ResidentTensor] {
        &self.parameters
    }

    /// The optimizer state, two tensors per parameter named `<param>.exp_avg` and
    /// `<param>.exp_avg_sq`, in parameter order: what a checkpoint saves.
    pub fn state_tensors(&self) -> &[ResidentTensor] {
        &self.state
    }

    /// The values of the next step's scalar inputs.
    pub fn step_scalar_values(&self) -> StepScalarValues {
        let (beta1, beta2) = self.settings.algorithm.rule().betas();
        StepScalarValues::new(self.learning_rate(), beta1, beta2, self.steps_taken)
    }

    /// Sets the step scalars of the next step; call before every `graph.execute()`.
    pub fn prepare_step(&self, graph: &mut Graph) {
        self.scalars.set(graph, self.step_scalar_values());
    }

    /// After `graph.execute()`: takes out the gradient norm, makes every updated parameter and
    /// state tensor the input of the next step, and counts the step. Must follow every execution
    /// (an output left in place would not be recomputed by the next one). Reads nothing on the
    /// host, so the next step can be queued before this one has ended on a device.
    pub fn finish_step(&mut self, graph: &mut Graph) -> StepReport {
        let report = StepReport {
            step: self.steps_taken,
            learning_rate: self.learning_rate(),
            taken_grad_norm: TakenOutput::take(graph, self.grad_norm),
        };
        for tensor in self.parameters.iter().chain(&self.state) {
            let output = (tensor.output.node, tensor.output.index);
            if output != (tensor.input, 0) {
                if let Some(value) = graph.tensors.remove(&output) {
                    graph.tensors.insert((tensor.input, 0), value);
                }
            }
        }
        self.steps_taken += 1;
        report
    }

    /// Zeroes the state (a fresh optimizer) and the step count.
    pub fn reset_state(&mut self, graph: &mut Graph) {
        self.reset_state_at(graph, 0);
    }

    /// Zeroes the state and counts `steps_taken` steps as taken: the schedules (learning rate,
    /// layer dropping) continue from there.
    pub fn reset_state_at(&mut self, graph: &mut Graph, steps_taken: u64) {
        for tensor in &self.state {
            graph.set_tensor(tensor.input, 0, Tensor::new(vec![0.0f32; tensor.numel()]));
        }
        self.steps_taken = steps_taken;
    }

    /// The current state as host values, by name (as [`state_tensors`](Self::state_tensors)
    /// lists them), copied back from the device where it lives there. Fails where a tensor is
    /// unset.
    pub fn read_state(&self, graph: &Graph) -> Result<Vec<(String, Vec<f32>)>> {
        self.state
            .iter()
            .map(|tensor| {
                host_values(graph, tensor.input)
                    .map(|values| (tensor.name.clone(), values))
                    .ok_or_else(|| {
                        DropbertError::InvalidInput(format!(
                            "optimizer state {} is not set",
                            tensor.name
                        ))
                    })
            })
            .collect()
    }

    /// Restores the state saved by [`read_state`](Self::read_state) (every tensor, by name, with
    /// its length checked) and the number of steps already taken.
    pub fn load_state(
        &mut self,
        graph: &mut Graph,
        values: &BTreeMap<String, Vec<f32>>,
        steps_taken: u64,
    ) -> Result<()> {
        for tensor in &self.state {
            let found = values.get(&tensor.name).ok_or_else(|| {
                DropbertError::InvalidInput(format!("optimizer state {} is missing", tensor.name))
            })?;
            if found.len() != tensor.numel() {
                return Err(DropbertError::InvalidInput(format!(
                    "optimizer state {} has {} values, expected {} (shape {:?})",
                    tensor.name,
                    found.len(),
                    tensor.numel(),
                    tensor.shape
                )));
            }
        }
        if let Some(unknown) = values
            .keys()
            .find(|name| !self.state.iter().any(|t| &t.name == *name))
        {
            return Err(DropbertError::InvalidInput(format!(
                "optimizer state {unknown} belongs to no parameter of this model"
            )));
        }
        for tensor in &self.state {
            graph.set_tensor(tensor.input, 0, Tensor::new(values[&tensor.name].clone()));
        }
        self.steps_taken = steps_taken;
        Ok(())
    }
}
/// Makes a step's `output` the next step's `input`: the output is kept, and the input, replaced
/// by [`Optimizer::finish_step`] after every execution, is not, so the step's last reader takes
/// its buffer rather than copying it (on the GPU, luminal_cuda's upload of each graph input would
/// otherwise clone every weight and state tensor on the device each step).
fn hand_over(graph: &mut Graph, input: NodeIndex, output: NodeIndex) {
    graph.keep_tensors(output);
    if output == input {
        graph.keep_tensors(input);
    } else {
        graph.no_delete.remove(&input);
    }
}
