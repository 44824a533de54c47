use luminal::prelude::*;

use super::tensor_ref::{Builder, TensorRef};
use crate::ops::ViewAdjoint;

/// Maps the gradient of a view (logical shape of `view`) back onto the buffer it reads: the
/// result lists the buffer's elements in memory order. Permutes are undone as views, broadcast
/// axes are summed, padding is sliced off the gradient (a view too); other views with slices or
/// padding go through the generic [`ViewAdjoint`] op.
pub(crate) fn unview(
    builder: &mut Builder<'_>,
    gradient: TensorRef,
    view: &ShapeTracker,
) -> TensorRef {
    if let Some((gradient, view)) = without_padding(gradient, view) {
        return unview(builder, gradient, &view);
    }
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

/// Where `view` only pads its buffer (no slices, no broadcast axes), each buffer element appears
/// once in the view, at its own index shifted by the padding before it: its gradient is the
/// padded gradient sliced to the buffer's extent. Returns that slice and `view` without its
/// padding; `None` for any other view, or a gradient already read through a slice or padding
/// (luminal cannot slice those axes again).
fn without_padding(gradient: TensorRef, view: &ShapeTracker) -> Option<(TensorRef, ShapeTracker)> {
    let only_padded = view.is_padded() && !view.is_sliced() && !view.fake.iter().any(|&f| f);
    if !only_padded || gradient.view.is_sliced() || gradient.view.is_padded() {
        return None;
    }
    let mut unpadded = *view;
    let mut kept = Vec::with_capacity(view.len());
    for &buffer_axis in &view.indexes {
        let before = view.padding[buffer_axis].0;
        kept.push((before, before + view.dims[buffer_axis]));
        unpadded.padding[buffer_axis] = (0.into(), 0.into());
    }
    let mut sliced = gradient;
    sliced.view.slice(&kept);
    Some((sliced, unpadded))
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
