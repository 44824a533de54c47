use std::collections::{HashMap, HashSet};

use luminal::prelude::{
    petgraph::{algo::toposort, visit::EdgeRef, Direction},
    *,
};

use super::{
    rules::{gate_choose, gate_mask, node_inputs, OpKind},
    tensor_ref::{Builder, TensorRef},
    unview::unview,
};
use crate::{nn::ParameterRef, ops::GateChoose, DropbertError, Result};

/// The forward nodes of a switchable block (layer dropping) and its gate. A node's gradient
/// gathers what reaches it from inside the block (counted only while the gate is on) and what
/// reaches it through the block's skip path (only while it is off) into one
/// [`GateChoose`](crate::ops::GateChoose) of the two sums, or one
/// [`GateMask`](crate::ops::GateMask) where there is only one of them. A step whose gate is off
/// computes none of the block's backward pass, and neither state adds a buffer of zeros.
#[derive(Debug, Clone, Default)]
pub struct GatedRegion {
    pub gate: NodeIndex,
    pub nodes: HashSet<NodeIndex>,
}

/// The gradient of one parameter: a retrieved graph output of the parameter's shape.
#[derive(Debug, Clone)]
pub struct Gradient {
    pub parameter: ParameterRef,
    pub tensor: TensorRef,
}

/// Adds to `graph` the backward pass of the scalar `loss` with respect to `parameters`. A
/// parameter the loss does not depend on gets a zero gradient. The gradients are plain graph
/// nodes: retrieve them to read them on the host, or feed them to an optimizer.
/// `gated` lists the switchable blocks, if any.
pub fn add_backward(
    graph: &mut Graph,
    loss: TensorRef,
    parameters: &[ParameterRef],
    gated: &[GatedRegion],
) -> Result<Vec<Gradient>> {
    if loss.numel() != 1 {
        return Err(DropbertError::InvalidInput(format!(
            "the loss must be a scalar, not a tensor of shape {:?}",
            loss.shape()
        )));
    }
    let relevant = nodes_between(graph, parameters, loss.id);
    let order = toposort(&graph.graph, None).expect("luminal graphs are acyclic");
    let mut builder = Builder { graph };
    let mut gradients: HashMap<NodeIndex, Pending> = HashMap::new();
    let seed = builder.constant(1.0, &loss.shape());
    let seed = unview(&mut builder, seed, &loss.view);
    accumulate(
        &mut builder,
        &mut gradients,
        loss.id,
        seed,
        Activity::Always,
    );

    for node in order.into_iter().rev() {
        if !relevant.contains(&node) {
            continue;
        }
        let inputs = node_inputs(builder.graph, node);
        if inputs.is_empty() {
            // A leaf: its gradient stays pending for the parameters below.
            continue;
        }
        let Some(pending) = gradients.remove(&node) else {
            continue;
        };
        let gradient = pending.total(&mut builder, gated);
        let kind = OpKind::of(
            builder
                .graph
                .graph
                .node_weight(node)
                .expect("live node")
                .as_ref(),
        )?;
        if kind.is_unary() {
            // luminal's unary ops map their input's buffer element by element, ignoring the
            // view, and their output keeps the input's view: differentiate buffer to buffer.
            let len = physical_len(&inputs[0]);
            let input = TensorRef::output(inputs[0].id, &[len]);
            let output = TensorRef::output(node, &[len]);
            let gradient = builder.reshape(gradient, &[len]);
            if let Some(input_gradient) =
                kind.input_gradients(&mut builder, &[input], output, gradient)[0]
            {
                if relevant.contains(&input.id) {
                    let activity = activity(gated, node, input.id);
                    accumulate(
                        &mut builder,
                        &mut gradients,
                        input.id,
                        input_gradient,
                        activity,
                    );
                }
            }
            continue;
        }
        let shape = kind.output_shape(&inputs);
        let output = TensorRef::output(node, &shape);
        // A gradient already of the output's logical shape is used as the view it is (often a
        // broadcast, which copying would materialise); only a different shape needs a reshape.
        let gradient = if gradient.shape() == shape {
            gradient
        } else {
            builder.reshape(gradient, &shape)
        };
        let input_gradients = kind.input_gradients(&mut builder, &inputs, output, gradient);
        for (order, (input, input_gradient)) in inputs.iter().zip(input_gradients).enumerate() {
            let Some(input_gradient) = input_gradient else {
                continue;
            };
            if !relevant.contains(&input.id) {
                continue;
            }
            let buffer_gradient = unview(&mut builder, input_gradient, &input.view);
            // The skip path of a switchable block carries its gradient only while the gate is off.
            let skip_path = matches!(kind, OpKind::GateChoose) && order == GateChoose::OFF as usize;
            let activity = if skip_path {
                let gate = inputs[GateChoose::GATE as usize].id;
                let region = gated
                    .iter()
                    .position(|region| region.gate == gate)
                    .expect("every gate choice closes a switchable block");
                Activity::WhileOff(region)
            } else {
                activity(gated, node, input.id)
            };
            accumulate(
                &mut builder,
                &mut gradients,
                input.id,
                buffer_gradient,
                activity,
            );
        }
    }

    parameters
        .iter()
        .map(|parameter| {
            let tensor = match gradients.remove(&parameter.id) {
                Some(pending) => {
                    let gradient = pending.total(&mut builder, gated);
                    builder.reshape(gradient, &parameter.shape)
                }
                None => {
                    let zeros = builder.constant(0.0, &parameter.shape);
                    builder.reshape(zeros, &parameter.shape)
                }
            };
            Ok(Gradient {
                parameter: parameter.clone(),
                tensor,
            })
        })
        .collect()
}

/// When a gradient flowing from `node` to `input` exists: always, or only while the gate of the
/// switchable block it leaves is on.
fn activity(gated: &[GatedRegion], node: NodeIndex, input: NodeIndex) -> Activity {
    match gated
        .iter()
        .position(|region| region.nodes.contains(&node) && !region.nodes.contains(&input))
    {
        Some(region) => Activity::WhileOn(region),
        None => Activity::Always,
    }
}

/// When a contribution to a gradient exists, by switchable block (an index into the regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Always,
    WhileOn(usize),
    WhileOff(usize),
}

/// A node's gradient as it accumulates: the sum of the contributions that always exist, and per
/// switchable block the sums of those that exist only while its gate is on, or only while off.
#[derive(Debug, Default)]
struct Pending {
    always: Option<TensorRef>,
    gated: Vec<(usize, Option<TensorRef>, Option<TensorRef>)>,
}

impl Pending {
    fn add(&mut self, builder: &mut Builder<'_>, gradient: TensorRef, activity: Activity) {
        let slot = match activity {
            Activity::Always => &mut self.always,
            Activity::WhileOn(region) | Activity::WhileOff(region) => {
                let at = match self.gated.iter().position(|entry| entry.0 == region) {
                    Some(at) => at,
                    None => {
                        self.gated.push((region, None, None));
                        self.gated.len() - 1
                    }
                };
                let (_, on, off) = &mut self.gated[at];
                if matches!(activity, Activity::WhileOn(_)) {
                    on
                } else {
                    off
                }
            }
        };
        *slot = Some(match slot.take() {
            None => gradient,
            Some(existing) => sum(builder, existing, gradient),
        });
    }

    /// The gradient: the contributions that always exist, plus per switchable block the choice
    /// (or the mask) of its gate.
    fn total(self, builder: &mut Builder<'_>, gated: &[GatedRegion]) -> TensorRef {
        let mut total = self.always;
        for (region, on, off) in self.gated {
            let gate = TensorRef::output(gated[region].gate, &[]);
            let term = match (on, off) {
                (Some(on), Some(off)) => {
                    let (on, off) = same_shape(builder, on, off);
                    gate_choose(builder, gate, on, off)
                }
                (Some(on), None) => gate_mask(builder, gate, on, true),
                (None, Some(off)) => gate_mask(builder, gate, off, false),
                (None, None) => unreachable!("a block's entry holds a contribution"),
            };
            total = Some(match total {
                None => term,
                Some(existing) => sum(builder, existing, term),
            });
        }
        total.expect("a pending gradient holds a contribution")
    }
}

fn physical_len(tensor: &TensorRef) -> usize {
    tensor
        .view
        .n_physical_elements()
        .to_usize()
        .expect("autograd needs static shapes")
}

/// Adds `gradient`, a contribution that exists as `activity` says, to what `node` has
/// accumulated.
fn accumulate(
    builder: &mut Builder<'_>,
    gradients: &mut HashMap<NodeIndex, Pending>,
    node: NodeIndex,
    gradient: TensorRef,
    activity: Activity,
) {
    gradients
        .entry(node)
        .or_default()
        .add(builder, gradient, activity);
}

/// `a` and `b` under one logical shape: both list a node's buffer in memory order, though
/// possibly under different logical shapes.
fn same_shape(builder: &mut Builder<'_>, a: TensorRef, b: TensorRef) -> (TensorRef, TensorRef) {
    if a.shape() == b.shape() {
        (a, b)
    } else {
        let flat = [a.numel()];
        (builder.reshape(a, &flat), builder.reshape(b, &flat))
    }
}

/// `a + b`, two gradients of one node's buffer.
fn sum(builder: &mut Builder<'_>, a: TensorRef, b: TensorRef) -> TensorRef {
    let (a, b) = same_shape(builder, a, b);
    builder.add(a, b)
}

/// Nodes that depend on a parameter and that the loss depends on: only they carry gradients.
fn nodes_between(
    graph: &Graph,
    parameters: &[ParameterRef],
    loss: NodeIndex,
) -> HashSet<NodeIndex> {
    let reach = |starts: Vec<NodeIndex>, direction: Direction| {
        let mut seen: HashSet<NodeIndex> = starts.iter().copied().collect();
        let mut stack = starts;
        while let Some(node) = stack.pop() {
            for edge in graph.graph.edges_directed(node, direction) {
                if edge.weight().is_schedule() {
                    continue;
                }
                let next = match direction {
                    Direction::Outgoing => edge.target(),
                    Direction::Incoming => edge.source(),
                };
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let from_parameters = reach(
        parameters.iter().map(|p| p.id).collect(),
        Direction::Outgoing,
    );
    let to_loss = reach(vec![loss], Direction::Incoming);
    from_parameters.intersection(&to_loss).copied().collect()
}
