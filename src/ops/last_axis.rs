//! What the row-by-row ops over a tensor's last axis (softmax, LayerNorm's normalization,
//! cross-entropy) share: the rows and width of a shape, adding such an op to a graph, and the CPU
//! loops over the rows on the threads.
use luminal::{op::Operator, prelude::*};

use crate::compile::cpu::{fill_in_chunks, thread_count};

/// `(rows, width)` of a static shape seen as rows of its last axis.
pub fn rows_and_width<S: Shape>() -> (usize, usize) {
    let dims: Vec<usize> = S::realized_shape()
        .iter()
        .map(|d| d.to_usize().expect("dropbert graphs have static shapes"))
        .collect();
    let width = *dims.last().expect("a row op needs an axis");
    (dims.iter().product::<usize>() / width.max(1), width)
}

/// `op` applied to `x`; its output is contiguous, of `x`'s shape.
pub fn last_axis_op<S: Shape>(x: GraphTensor<S>, op: impl Operator + 'static) -> GraphTensor<S> {
    let id = x.graph().add_op(op).input(x.id, 0, x.shape).finish();
    GraphTensor::from_id(id, ShapeTracker::new(&S::realized_shape()), x.graph_ref)
}

/// The central difference `(loss(x + h e_j) - loss(x - h e_j)) / 2h` for every element `j`:
/// the reference the row ops' gradients are tested against.
#[cfg(test)]
pub fn central_differences(loss: impl Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|j| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[j] += h;
            down[j] -= h;
            (loss(&up) - loss(&down)) / (2.0 * h)
        })
        .collect()
}

/// Whole rows of `width` per CPU task, about 16k values.
fn rows_per_task(width: usize) -> usize {
    (1 << 14) / width.max(1) + 1
}

/// A `[rows, width]` buffer, each row written by `row_rule(the row's first index, the row)`.
pub fn map_rows(
    rows: usize,
    width: usize,
    row_rule: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let chunk = rows_per_task(width) * width;
    fill_in_chunks(rows * width, chunk, thread_count(), |start, values| {
        for (offset, out) in values.chunks_mut(width).enumerate() {
            row_rule(start + offset * width, out);
        }
    })
}

/// A `[rows]` buffer of one value per row of `width`: `row_rule(the row's index)`.
pub fn map_row_values(
    rows: usize,
    width: usize,
    row_rule: impl Fn(usize) -> f32 + Sync,
) -> Vec<f32> {
    fill_in_chunks(
        rows,
        rows_per_task(width),
        thread_count(),
        |start, values| {
            for (offset, value) in values.iter_mut().enumerate() {
                *value = row_rule(start + offset);
            }
        },
    )
}
