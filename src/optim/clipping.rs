//! Global gradient-norm clipping inside the graph, as `torch.nn.utils.clip_grad_norm_` does it.
use luminal::prelude::*;

use super::flat::{broadcast, flat_len, min_with, sum_of_squares, FlatTensor};

/// `torch.nn.utils.clip_grad_norm_`'s constant added to the norm before dividing.
pub const CLIP_EPSILON: f32 = 1e-6;

/// Gradients after clipping, and the global norm they had before it.
pub struct ClippedGradients {
    pub gradients: Vec<FlatTensor>,
    /// The L2 norm of all gradients together, before clipping (what `clip_grad_norm_` returns).
    pub norm: GraphTensor<R0>,
}

/// The L2 norm of all `gradients` viewed as one vector: `sqrt(sum over tensors of sum(g * g))`.
pub fn global_norm(gradients: &[FlatTensor]) -> GraphTensor<R0> {
    gradients
        .iter()
        .map(|&gradient| sum_of_squares(gradient))
        .reduce(|total, part| total + part)
        .expect("at least one gradient")
        .sqrt()
}

/// Scales every gradient by `min(1, max_norm / (norm + 1e-6))`, where `norm` is their
/// [`global_norm`]. Built from primitive ops only (`min` as a comparison and arithmetic), so every
/// backend runs it; nothing goes back to the host.
pub fn clip_global_norm(gradients: &[FlatTensor], max_norm: f32) -> ClippedGradients {
    let norm = global_norm(gradients);
    let scale = min_with((norm + CLIP_EPSILON).recip() * max_norm, 1.0);
    let gradients = gradients
        .iter()
        .map(|&gradient| gradient * broadcast(scale, flat_len(gradient)))
        .collect();
    ClippedGradients { gradients, norm }
}
