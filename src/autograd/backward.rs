use std::collections::{HashMap, HashSet};

use luminal::prelude::{
    petgraph::{algo::toposort, visit::EdgeRef, Direction},
    *,
};

use super::{
    rules::{gate_mask, node_inputs, OpKind},
    tensor_ref::{Builder, TensorRef},
    unview::unview,
};
use crate::{nn::ParameterRef, DropbertError, Result};

/// The forward nodes of a switchable block (layer dropping) and its gate: every gradient that
/// leaves the block passes through a [`GateMask`](crate::ops::GateMask), so that a step whose
/// gate is off computes none of the block's backward pass.
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
    let mut gradients: HashMap<NodeIndex, TensorRef> = HashMap::new();
    let seed = builder.constant(1.0, &loss.shape());
    let seed = unview(&mut builder, seed, &loss.view);
    gradients.insert(loss.id, seed);

    for node in order.into_iter().rev() {
        if !relevant.contains(&node) {
            continue;
        }
        let Some(gradient) = gradients.remove(&node) else {
            continue;
        };
        let inputs = node_inputs(builder.graph, node);
        if inputs.is_empty() {
            // A leaf: keep its gradient for the parameters below.
            gradients.insert(node, gradient);
            continue;
        }
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
                    let input_gradient =
                        leave_gated_region(&mut builder, gated, node, input.id, input_gradient);
                    accumulate(&mut builder, &mut gradients, input.id, input_gradient);
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
        for (input, input_gradient) in inputs.iter().zip(input_gradients) {
            let Some(input_gradient) = input_gradient else {
                continue;
            };
            if !relevant.contains(&input.id) {
                continue;
            }
            let buffer_gradient = unview(&mut builder, input_gradient, &input.view);
            let buffer_gradient =
                leave_gated_region(&mut builder, gated, node, input.id, buffer_gradient);
            accumulate(&mut builder, &mut gradients, input.id, buffer_gradient);
        }
    }

    parameters
        .iter()
        .map(|parameter| {
            let tensor = match gradients.get(&parameter.id) {
                Some(&gradient) => builder.reshape(gradient, &parameter.shape),
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

/// Masks a gradient that flows from `node` inside a switchable block to `input` outside it.
fn leave_gated_region(
    builder: &mut Builder<'_>,
    gated: &[GatedRegion],
    node: NodeIndex,
    input: NodeIndex,
    gradient: TensorRef,
) -> TensorRef {
    match gated
        .iter()
        .find(|region| region.nodes.contains(&node) && !region.nodes.contains(&input))
    {
        Some(region) => {
            let gate = TensorRef::output(region.gate, &[]);
            gate_mask(builder, gate, gradient, true)
        }
        None => gradient,
    }
}

fn physical_len(tensor: &TensorRef) -> usize {
    tensor
        .view
        .n_physical_elements()
        .to_usize()
        .expect("autograd needs static shapes")
}

/// Adds `gradient` to what `node` has accumulated; both list the node's buffer in memory order,
/// though possibly under different logical shapes.
fn accumulate(
    builder: &mut Builder<'_>,
    gradients: &mut HashMap<NodeIndex, TensorRef>,
    node: NodeIndex,
    gradient: TensorRef,
) {
    let total = match gradients.remove(&node) {
        None => gradient,
        Some(existing) if existing.shape() == gradient.shape() => builder.add(existing, gradient),
        Some(existing) => {
            let flat = [existing.numel()];
            let existing = builder.reshape(existing, &flat);
            let gradient = builder.reshape(gradient, &flat);
            builder.add(existing, gradient)
        }
    };
    gradients.insert(node, total);
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
