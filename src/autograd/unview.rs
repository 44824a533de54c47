use luminal::prelude::*;

use super::tensor_ref::{Builder, TensorRef};
use crate::ops::ViewAdjoint;

/// Maps the gradient of a view (logical shape of `view`) back onto the buffer it reads: the
/// result lists the buffer's elements in memory order. Permutes are undone as views, broadcast
/// axes are summed; views with slices or padding go through the generic [`ViewAdjoint`] op.
pub(crate) fn unview(
    builder: &mut Builder<'_>,
    gradient: TensorRef,
    view: &ShapeTracker,
) -> TensorRef {
    if view.is_sliced() || view.is_padded() {
        let physical_len = view
            .n_physical_elements()
            .to_usize()
            .expect("autograd needs static shapes");
        let op = ViewAdjoint::new(*view, physical_len);
        return builder.unary_to(op, gradient, &[physical_len]);
    }
    let rank = view.len();
    // Logical axis i reads buffer axis view.indexes[i]; put the axes back in buffer order.
    let mut to_buffer_order = vec![0; rank];
    for (logical, &buffer_axis) in view.indexes.iter().enumerate() {
        to_buffer_order[buffer_axis] = logical;
    }
    let mut in_buffer_order = gradient;
    in_buffer_order.view.permute(&to_buffer_order);
    (0..rank)
        .rev()
        .filter(|&axis| view.fake[axis])
        .fold(in_buffer_order, |gradient, axis| {
            builder.sum_reduce(gradient, axis)
        })
}

impl Builder<'_> {
    /// A node with one input and an output of `shape`.
    pub fn unary_to(
        &mut self,
        op: impl luminal::op::Operator + 'static,
        x: TensorRef,
        shape: &[usize],
    ) -> TensorRef {
        let id = self.graph.add_op(op).input(x.id, 0, x.view).finish();
        TensorRef::output(id, shape)
    }
}
