//! Global gradient-norm clipping inside the graph, as `torch.nn.utils.clip_grad_norm_` does it.
use luminal::prelude::*;

use super::flat::{broadcast, flat_len, min_with, FlatTensor};
use crate::ops::{sum_of_squares, MAX_SUMMED};

/// `torch.nn.utils.clip_grad_norm_`'s constant added to the norm before dividing.
pub const CLIP_EPSILON: f32 = 1e-6;

/// Gradients after clipping, and the global norm they had before it.
pub struct ClippedGradients {
    pub gradients: Vec<FlatTensor>,
    /// The L2 norm of all gradients together, before clipping (what `clip_grad_norm_` returns).
    pub norm: GraphTensor<R0>,
}

/// The L2 norm of all `gradients` viewed as one vector: `sqrt(sum over tensors of sum(g * g))`,
/// by one [`SumOfSquares`](crate::ops::SumOfSquares) op per [`MAX_SUMMED`] tensors.
pub fn global_norm(gradients: &[FlatTensor]) -> GraphTensor<R0> {
    let graph = gradients.first().expect("at least one gradient").graph();
    gradients
        .chunks(MAX_SUMMED)
        .map(|group| {
            let views: Vec<_> = group.iter().map(|g| (g.id, g.shape)).collect();
            let id = sum_of_squares(graph, &views);
            GraphTensor::<R0>::from_id(id, ShapeTracker::new(&[]), graph)
        })
        .reduce(|total, part| total + part)
        .expect("at least one group")
        .sqrt()
}

/// `min(1, max_norm / (norm + 1e-6))`: what clipping multiplies every gradient by.
pub fn clip_scale(norm: GraphTensor<R0>, max_norm: f32) -> GraphTensor<R0> {
    min_with((norm + CLIP_EPSILON).recip() * max_norm, 1.0)
}

/// Scales every gradient by [`clip_scale`] of their [`global_norm`]. Nothing goes back to the
/// host.
pub fn clip_global_norm(gradients: &[FlatTensor], max_norm: f32) -> ClippedGradients {
    let norm = global_norm(gradients);
    let scale = clip_scale(norm, max_norm);
    let gradients = gradients
        .iter()
        .map(|&gradient| gradient * broadcast(scale, flat_len(gradient)))
        .collect();
    ClippedGradients { gradients, norm }
}
