use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;

/// The `Operator::custom` key a gate op answers, on every backend, with [`GatedInputs`]: which
/// of its inputs it reads only while its gate is in one state.
pub const GATED_INPUTS: &str = "dropbert.gated_inputs";

/// `(input order, read while the gate is on)` for each input a gate op reads in one state only.
pub type GatedInputs = Vec<(u8, bool)>;

/// The answer of a gate op to `custom(key, ..)`.
pub fn answer_gated_inputs(key: &str, inputs: GatedInputs) -> Option<Box<dyn std::any::Any>> {
    (key == GATED_INPUTS).then(|| Box::new(inputs) as Box<dyn std::any::Any>)
}

/// Whether a gate's scalar input (0 or 1, fed by the host each step) is on.
fn gate_is_on(input: &InputTensor, view: &ShapeTracker) -> bool {
    input_values(input, view)[0] != 0.0
}

/// `gate ? on : off`: the output of a switchable block. Inputs `gate []`, `on`, `off` (same
/// logical shape). The branch not taken is never read, so the program may skip computing it
/// (see [`crate::drop::GateSchedule`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GateChoose;

impl GateChoose {
    pub const GATE: u8 = 0;
    pub const ON: u8 = 1;
    pub const OFF: u8 = 2;

    pub fn gated_inputs() -> GatedInputs {
        vec![(Self::ON, true), (Self::OFF, false)]
    }
}

impl Operator for GateChoose {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let on = gate_is_on(&inputs[0].0, &inputs[0].1);
        let (taken, view) = inputs.swap_remove(if on { 1 } else { 2 });
        vec![Tensor::new(input_values(&taken, &view).into_owned())]
    }

    fn custom(&mut self, key: &str, _: Box<dyn std::any::Any>) -> Option<Box<dyn std::any::Any>> {
        answer_gated_inputs(key, Self::gated_inputs())
    }
}

/// `gate == pass_when ? value : 0`. Inputs `gate []` and `value`. Where a gradient leaves a
/// switchable block it passes only while the block runs (`pass_when = true`); the gradient of
/// the block's skip path passes only while it does not (`pass_when = false`). A value that is
/// not passed is never read.
#[derive(Debug, Clone, PartialEq)]
pub struct GateMask {
    pub pass_when: bool,
    pub len: usize,
}

impl GateMask {
    pub const GATE: u8 = 0;
    pub const VALUE: u8 = 1;

    pub fn gated_inputs(&self) -> GatedInputs {
        vec![(Self::VALUE, self.pass_when)]
    }
}

impl Operator for GateMask {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        if gate_is_on(&inputs[0].0, &inputs[0].1) == self.pass_when {
            vec![Tensor::new(
                input_values(&inputs[1].0, &inputs[1].1).into_owned(),
            )]
        } else {
            vec![Tensor::new(vec![0f32; self.len])]
        }
    }

    fn custom(&mut self, key: &str, _: Box<dyn std::any::Any>) -> Option<Box<dyn std::any::Any>> {
        answer_gated_inputs(key, self.gated_inputs())
    }
}

/// `gate ? on : off` as a graph op.
pub fn gate_choose<S: Shape>(
    gate: GraphTensor<()>,
    on: GraphTensor<S>,
    off: GraphTensor<S>,
) -> GraphTensor<S> {
    let id = gate
        .graph()
        .add_op(GateChoose)
        .input(gate.id, 0, gate.shape)
        .input(on.id, 0, on.shape)
        .input(off.id, 0, off.shape)
        .finish();
    GraphTensor::from_id(id, on.shape.contiguous(), gate.graph_ref)
}
