//! Reverse-mode automatic differentiation as a graph transformation: from a scalar loss node,
//! add to the same luminal graph the nodes that compute the gradient of every parameter. The
//! backward graph is made of the same primitive ops (plus dropbert's own), so every backend
//! compiler optimises it like the forward graph.
mod backward;
#[cfg(test)]
mod gradcheck;
mod rules;
mod tensor_ref;
mod unview;

pub use backward::{add_backward, GatedRegion, Gradient};
pub use tensor_ref::TensorRef;
