//! What every update rule consumes and produces for one parameter tensor.
use super::{flat::FlatTensor, step_scalars::StepScalars};

/// One parameter's tensors going into an update, all flat and of the parameter's length.
#[derive(Clone, Copy)]
pub struct UpdateInputs {
    /// The parameter's current values (a kept graph input).
    pub parameter: FlatTensor,
    /// Its gradient for this step (after any clipping).
    pub gradient: FlatTensor,
    /// First-moment state (PyTorch's `exp_avg`), a kept graph input.
    pub exp_avg: FlatTensor,
    /// Second-moment state (PyTorch's `exp_avg_sq`), a kept graph input.
    pub exp_avg_sq: FlatTensor,
    /// Whether weight decay applies to this parameter (see [`super::decays`]).
    pub decays: bool,
}

/// The new values an update computes; after the step they replace the matching inputs.
#[derive(Clone, Copy)]
pub struct UpdateOutputs {
    pub parameter: FlatTensor,
    pub exp_avg: FlatTensor,
    pub exp_avg_sq: FlatTensor,
}

/// An optimizer's per-parameter update as a subgraph.
pub trait UpdateRule {
    /// `(beta1, beta2)`, for the bias corrections the host feeds each step.
    fn betas(&self) -> (f64, f64);

    /// Adds the update of one parameter to the graph.
    fn update(&self, inputs: UpdateInputs, scalars: &StepScalars) -> UpdateOutputs;
}
