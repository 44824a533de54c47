//! The backward rule of every op autograd differentiates: given the gradient of an op's output
//! (in its logical output shape), the gradients of its inputs as the op saw them (each input's
//! logical view shape). Inputs that are not differentiable get `None`.
use std::f32::consts::{FRAC_PI_2, LN_2};

use luminal::{
    op::{self, Operator},
    prelude::*,
};

use super::tensor_ref::{Builder, TensorRef};
use crate::{
    ops::{
        AttentionProbabilities, AttentionProbabilitiesGradient, AttentionRows, CrossEntropy,
        CrossEntropyGradient, GateChoose, GateMask, GatherRows, Gelu, GeluGradient, LogitRows,
        Normalize, NormalizeGradient, ReplaceRows, ScatterAddRows, Softmax, SoftmaxGradient,
        ZeroRows,
    },
    DropbertError, Result,
};

/// The differentiable ops, read off a graph node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OpKind {
    Add,
    Mul,
    Mod,
    LessThan,
    Recip,
    Sqrt,
    Exp2,
    Log2,
    Sin,
    SumReduce(usize),
    MaxReduce(usize),
    Contiguous,
    GatherRows {
        rows: usize,
        width: usize,
    },
    ReplaceRows {
        rows: usize,
        width: usize,
    },
    GateChoose,
    Gelu {
        bias_width: Option<usize>,
    },
    Softmax {
        rows: usize,
        row: usize,
    },
    Normalize {
        rows: usize,
        width: usize,
        epsilon: f32,
    },
    CrossEntropy(LogitRows),
    AttentionProbabilities(AttentionRows),
}

impl OpKind {
    pub fn of(node: &dyn Operator) -> Result<Self> {
        let any = node.as_any();
        let kind = if any.is::<op::Add>() {
            OpKind::Add
        } else if any.is::<op::Mul>() {
            OpKind::Mul
        } else if any.is::<op::Mod>() {
            OpKind::Mod
        } else if any.is::<op::LessThan>() {
            OpKind::LessThan
        } else if any.is::<op::Recip>() {
            OpKind::Recip
        } else if any.is::<op::Sqrt>() {
            OpKind::Sqrt
        } else if any.is::<op::Exp2>() {
            OpKind::Exp2
        } else if any.is::<op::Log2>() {
            OpKind::Log2
        } else if any.is::<op::Sin>() {
            OpKind::Sin
        } else if let Some(reduce) = any.downcast_ref::<op::SumReduce>() {
            OpKind::SumReduce(reduce.0)
        } else if let Some(reduce) = any.downcast_ref::<op::MaxReduce>() {
            OpKind::MaxReduce(reduce.0)
        } else if any.is::<op::Contiguous>() {
            OpKind::Contiguous
        } else if let Some(gather) = any.downcast_ref::<GatherRows>() {
            OpKind::GatherRows {
                rows: gather.rows,
                width: gather.width,
            }
        } else if let Some(replace) = any.downcast_ref::<ReplaceRows>() {
            OpKind::ReplaceRows {
                rows: replace.rows,
                width: replace.width,
            }
        } else if any.is::<GateChoose>() {
            OpKind::GateChoose
        } else if let Some(gelu) = any.downcast_ref::<Gelu>() {
            OpKind::Gelu {
                bias_width: gelu.bias_width,
            }
        } else if let Some(normalize) = any.downcast_ref::<Normalize>() {
            OpKind::Normalize {
                rows: normalize.rows,
                width: normalize.width,
                epsilon: normalize.epsilon,
            }
        } else if let Some(softmax) = any.downcast_ref::<Softmax>() {
            OpKind::Softmax {
                rows: softmax.rows,
                row: softmax.row,
            }
        } else if let Some(probabilities) = any.downcast_ref::<AttentionProbabilities>() {
            OpKind::AttentionProbabilities(probabilities.0)
        } else if let Some(loss) = any.downcast_ref::<CrossEntropy>() {
            OpKind::CrossEntropy(loss.0)
        } else {
            return Err(DropbertError::InvalidInput(format!(
                "autograd has no backward rule for the op {node:?} on the path from the parameters to the loss"
            )));
        };
        Ok(kind)
    }

    /// Ops that map their input buffer element by element (luminal's unary primitives).
    pub fn is_unary(self) -> bool {
        matches!(
            self,
            OpKind::Recip | OpKind::Sqrt | OpKind::Exp2 | OpKind::Log2 | OpKind::Sin
        )
    }

    /// The logical shape of the op's output, given its input views.
    pub fn output_shape(self, inputs: &[TensorRef]) -> Vec<usize> {
        match self {
            OpKind::SumReduce(axis) | OpKind::MaxReduce(axis) => {
                let mut shape = inputs[0].shape();
                shape.remove(axis);
                shape
            }
            OpKind::GatherRows { width, .. } => vec![inputs[1].numel(), width],
            OpKind::CrossEntropy(logits) => vec![logits.rows],
            OpKind::ReplaceRows { rows, width } => vec![rows, width],
            OpKind::GateChoose => inputs[1].shape(),
            _ => inputs[0].shape(),
        }
    }

    /// Gradients of the inputs, given the op's `output` and its `gradient`.
    pub fn input_gradients(
        self,
        builder: &mut Builder<'_>,
        inputs: &[TensorRef],
        output: TensorRef,
        gradient: TensorRef,
    ) -> Vec<Option<TensorRef>> {
        let g = gradient;
        match self {
            OpKind::Add => vec![Some(g), Some(g)],
            OpKind::Mul => vec![
                Some(builder.mul(g, inputs[1])),
                Some(builder.mul(g, inputs[0])),
            ],
            // d(a mod b)/da = 1; the divisor is treated as a constant.
            OpKind::Mod => vec![Some(g), None],
            OpKind::LessThan => vec![None, None],
            OpKind::Recip => {
                let squared = builder.mul(output, output);
                let scaled = builder.mul(g, squared);
                vec![Some(builder.scale(scaled, -1.0))]
            }
            OpKind::Sqrt => {
                let reciprocal = builder.unary(op::Recip, output);
                let scaled = builder.mul(g, reciprocal);
                vec![Some(builder.scale(scaled, 0.5))]
            }
            OpKind::Exp2 => {
                let scaled = builder.mul(g, output);
                vec![Some(builder.scale(scaled, LN_2))]
            }
            OpKind::Log2 => {
                let reciprocal = builder.unary(op::Recip, inputs[0]);
                let scaled = builder.mul(g, reciprocal);
                vec![Some(builder.scale(scaled, 1.0 / LN_2))]
            }
            OpKind::Sin => {
                let shift = builder.constant(FRAC_PI_2, &inputs[0].shape());
                let shifted = builder.add(inputs[0], shift);
                let cosine = builder.unary(op::Sin, shifted);
                vec![Some(builder.mul(g, cosine))]
            }
            OpKind::SumReduce(axis) => {
                let size = inputs[0].shape()[axis];
                vec![Some(builder.expand(g, axis, size))]
            }
            OpKind::MaxReduce(axis) => {
                // Shared evenly among the positions that attain the maximum, as torch.amax does.
                let size = inputs[0].shape()[axis];
                let maximum = builder.expand(output, axis, size);
                let below = builder.less_than(inputs[0], maximum);
                let above = builder.less_than(maximum, inputs[0]);
                let different = builder.add(below, above);
                let not_maximum = builder.scale(different, -1.0);
                let one = builder.constant(1.0, &inputs[0].shape());
                let is_maximum = builder.add(not_maximum, one);
                let count = builder.sum_reduce(is_maximum, axis);
                let share = builder.unary(op::Recip, count);
                let shared = builder.mul(g, share);
                let spread = builder.expand(shared, axis, size);
                vec![Some(builder.mul(spread, is_maximum))]
            }
            OpKind::Contiguous => vec![Some(g)],
            OpKind::GatherRows { rows, width } => {
                let id = builder
                    .graph
                    .add_op(ScatterAddRows { rows, width })
                    .input(g.id, 0, g.view)
                    .input(inputs[1].id, 0, inputs[1].view)
                    .finish();
                vec![Some(TensorRef::output(id, &[rows, width])), None]
            }
            OpKind::ReplaceRows { rows, width } => {
                let positions = inputs[2];
                let base = builder
                    .graph
                    .add_op(ZeroRows { rows, width })
                    .input(g.id, 0, g.view)
                    .input(positions.id, 0, positions.view)
                    .finish();
                let replaced = builder
                    .graph
                    .add_op(GatherRows { rows, width })
                    .input(g.id, 0, g.view)
                    .input(positions.id, 0, positions.view)
                    .finish();
                vec![
                    Some(TensorRef::output(base, &[rows, width])),
                    Some(TensorRef::output(replaced, &[positions.numel(), width])),
                    None,
                ]
            }
            // The skip path's gradient exists only while the gate is off: the backward pass
            // gathers it with the block's own (see `backward::Pending`).
            OpKind::GateChoose => vec![None, Some(g), Some(g)],
            OpKind::Gelu { bias_width } => {
                let (x, len) = (inputs[0], inputs[0].numel());
                let mut op = builder
                    .graph
                    .add_op(GeluGradient { len, bias_width })
                    .input(x.id, 0, x.view)
                    .input(g.id, 0, g.view);
                if let Some(bias) = inputs.get(Gelu::BIAS as usize) {
                    op = op.input(bias.id, 0, bias.view);
                }
                let dx = TensorRef::output(op.finish(), &x.shape());
                let bias_gradient = bias_width.map(|width| {
                    let rows = builder.reshape(dx, &[len / width, width]);
                    builder.sum_reduce(rows, 0)
                });
                vec![Some(dx), bias_gradient]
            }
            OpKind::Normalize {
                rows,
                width,
                epsilon,
            } => {
                let op = NormalizeGradient {
                    rows,
                    width,
                    epsilon,
                };
                vec![Some(gradient_op(builder, op, inputs[0], g))]
            }
            OpKind::Softmax { rows, row } => {
                let op = SoftmaxGradient { rows, row };
                vec![Some(gradient_op(builder, op, output, g))]
            }
            OpKind::CrossEntropy(rows) => {
                let mut op = builder.graph.add_op(CrossEntropyGradient(rows));
                for input in inputs.iter().chain([&g]) {
                    op = op.input(input.id, 0, input.view);
                }
                // The same gradient for the product and the logits; the bias, added to every
                // row, gets its sum over the rows.
                let logits = TensorRef::output(op.finish(), &[rows.rows, rows.width]);
                let bias = builder.sum_reduce(logits, 0);
                let mut gradients = vec![None; inputs.len()];
                gradients[LogitRows::PRODUCT as usize] = Some(logits);
                gradients[LogitRows::BIAS as usize] = Some(bias);
                gradients
            }
            OpKind::AttentionProbabilities(rows) => {
                let mut op = builder
                    .graph
                    .add_op(AttentionProbabilitiesGradient(rows))
                    .input(inputs[0].id, 0, inputs[0].view)
                    .input(inputs[1].id, 0, inputs[1].view)
                    .input(g.id, 0, g.view);
                if let Some(key) = inputs.get(AttentionProbabilities::KEY as usize) {
                    op = op.input(key.id, 0, key.view);
                }
                let id = op.finish();
                let mut gradients = vec![Some(TensorRef::output(id, &inputs[0].shape())), None];
                gradients.resize(inputs.len(), None);
                gradients
            }
        }
    }
}

/// The input gradient of a single-input op computed by its own gradient `op` from `saved` (the
/// forward input or output it needs) and the output's gradient `g`, both of the input's shape.
fn gradient_op(
    builder: &mut Builder<'_>,
    op: impl Operator + 'static,
    saved: TensorRef,
    g: TensorRef,
) -> TensorRef {
    let shape = saved.shape();
    let id = builder
        .graph
        .add_op(op)
        .input(saved.id, 0, saved.view)
        .input(g.id, 0, g.view)
        .finish();
    TensorRef::output(id, &shape)
}

/// `gate ? on : off`, by the [`GateChoose`] op.
pub(crate) fn gate_choose(
    builder: &mut Builder<'_>,
    gate: TensorRef,
    on: TensorRef,
    off: TensorRef,
) -> TensorRef {
    let shape = on.shape();
    let id = builder
        .graph
        .add_op(GateChoose)
        .input(gate.id, 0, gate.view)
        .input(on.id, 0, on.view)
        .input(off.id, 0, off.view)
        .finish();
    TensorRef::output(id, &shape)
}

/// `gate == pass_when ? value : 0`, by the [`GateMask`] op.
pub(crate) fn gate_mask(
    builder: &mut Builder<'_>,
    gate: TensorRef,
    value: TensorRef,
    pass_when: bool,
) -> TensorRef {
    let shape = value.shape();
    let id = builder
        .graph
        .add_op(GateMask {
            pass_when,
            len: value.numel(),
        })
        .input(gate.id, 0, gate.view)
        .input(value.id, 0, value.view)
        .finish();
    TensorRef::output(id, &shape)
}

/// The inputs of `node` as the edges carry them.
pub(crate) fn node_inputs(graph: &Graph, node: NodeIndex) -> Vec<TensorRef> {
    graph
        .get_sources(node)
        .into_iter()
        .map(|(id, _, view)| TensorRef { id, view })
        .collect()
}
