//! dropbert's own graph ops, beyond luminal's primitives: indexed row gathers and scatters
//! (embeddings, token dropping), picking one column per row (the label's logit) and the adjoint
//! of a view (gradients through slices and pads).
//! Each carries a CPU kernel; each has a backward rule in [`crate::autograd`].
mod gather_rows;
mod input_values;
mod pick_columns;
mod scatter_add_rows;
mod view_adjoint;

pub use gather_rows::{gather_rows, GatherRows};
pub use input_values::{input_buffer, input_values};
pub use pick_columns::{pick_columns, PickColumns, PlaceColumns};
pub use scatter_add_rows::ScatterAddRows;
pub use view_adjoint::ViewAdjoint;
