//! What every update rule consumes and produces for the parameter tensors.
use luminal::prelude::*;

use super::{flat::FlatTensor, step_scalars::StepScalars};

/// One parameter's tensors going into an update, all flat and of the parameter's length.
#[derive(Clone, Copy)]
pub struct UpdateInputs {
    /// The parameter's current values (a kept graph input).
    pub parameter: FlatTensor,
    /// Its gradient for this step, before any clipping.
    pub gradient: FlatTensor,
    /// First-moment state (PyTorch's `exp_avg`), a kept graph input.
    pub exp_avg: FlatTensor,
    /// Second-moment state (PyTorch's `exp_avg_sq`), a kept graph input.
    pub exp_avg_sq: FlatTensor,
    /// Whether weight decay applies to this parameter (see [`super::decays`]).
    pub decays: bool,
}

/// One output of a graph node. An update op may compute many tensors at once, so a new value is
/// addressed by its node and its place among that node's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeOutput {
    pub node: NodeIndex,
    pub index: u8,
}

impl NodeOutput {
    /// The (only) output of `tensor`'s node.
    pub fn of<S: Shape>(tensor: GraphTensor<S>) -> Self {
        Self {
            node: tensor.id,
            index: 0,
        }
    }
}

/// The new values an update computes; after the step they replace the matching inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateOutputs {
    pub parameter: NodeOutput,
    pub exp_avg: NodeOutput,
    pub exp_avg_sq: NodeOutput,
}

/// An optimizer's update as a subgraph.
pub trait UpdateRule {
    /// `(beta1, beta2)`, for the bias corrections the host feeds each step.
    fn betas(&self) -> (f64, f64);

    /// Adds the update of every parameter in `inputs` to their graph, each gradient multiplied
    /// by `gradient_scale` first where there is one (clipping). Returns the new values, one entry
    /// per input, in order.
    fn update_all(
        &self,
        inputs: &[UpdateInputs],
        gradient_scale: Option<GraphTensor<R0>>,
        scalars: &StepScalars,
    ) -> Vec<UpdateOutputs>;
}
