//! One AdamW step over a group of parameter tensors as a single op: the update reads each
//! parameter, gradient and moment once and writes each new value once, instead of a chain of
//! kernels per tensor.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;
use crate::compile::cpu::{run_tasks, thread_count, Shared};

/// luminal addresses an op's inputs and outputs with a `u8`: the four step scalars and four
/// tensors per parameter must fit, and so must the CUDA kernel's table of pointers (under the
/// 4 KiB of kernel parameters every CUDA version accepts).
pub const MAX_GROUP: usize = 60;

/// AdamW's hyper-parameters as the update computes them, in f32 (derived from the f64 settings
/// as PyTorch derives them from Python floats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConstants {
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// The scalars of one step, read from the op's first four inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWScalars {
    pub learning_rate: f32,
    pub bias_correction1: f32,
    pub bias_correction2: f32,
    /// What every gradient is multiplied by first (global-norm clipping; 1 without it).
    pub gradient_scale: f32,
}

/// One element's new `(parameter, exp_avg, exp_avg_sq)`, in the order of operations of
/// `torch.optim.AdamW` (`_single_tensor_adam`, decoupled decay). The CUDA kernel repeats these
/// operations one for one, so both backends round alike.
pub fn adamw_element(
    constants: &AdamWConstants,
    scalars: &AdamWScalars,
    decays: bool,
    [parameter, gradient, exp_avg, exp_avg_sq]: [f32; 4],
) -> [f32; 3] {
    let parameter = if decays {
        parameter * (1.0 - scalars.learning_rate * constants.weight_decay)
    } else {
        parameter
    };
    let gradient = gradient * scalars.gradient_scale;
    let exp_avg = exp_avg + (gradient - exp_avg) * constants.one_minus_beta1;
    let exp_avg_sq = exp_avg_sq * constants.beta2 + gradient * gradient * constants.one_minus_beta2;
    let step_size = scalars.learning_rate * (1.0 / scalars.bias_correction1);
    let inverse_correction2_sqrt = 1.0 / scalars.bias_correction2.sqrt();
    let denominator = exp_avg_sq.sqrt() * inverse_correction2_sqrt + constants.epsilon;
    let parameter = parameter - exp_avg * (1.0 / denominator) * step_size;
    [parameter, exp_avg, exp_avg_sq]
}

/// AdamW over up to [`MAX_GROUP`] tensors. Inputs: the learning rate, the two bias corrections
/// and the gradient scale (scalars), then the `n` parameters, the `n` gradients, the `n`
/// `exp_avg` and the `n` `exp_avg_sq`, each a vector of its tensor's length. Outputs: the `n` new
/// parameters, then the `n` new `exp_avg`, then the `n` new `exp_avg_sq`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWStep {
    pub constants: AdamWConstants,
    /// Each tensor's number of elements.
    pub lengths: Vec<usize>,
    /// Whether each tensor's parameter decays.
    pub decays: Vec<bool>,
}

/// The inputs before the tensors: learning rate, bias corrections 1 and 2, gradient scale.
pub const ADAMW_SCALAR_INPUTS: usize = 4;

impl AdamWStep {
    pub fn new(constants: AdamWConstants, lengths: Vec<usize>, decays: Vec<bool>) -> Self {
        assert!(
            !lengths.is_empty() && lengths.len() <= MAX_GROUP,
            "an AdamW step takes 1 to {MAX_GROUP} tensors, not {}",
            lengths.len()
        );
        assert_eq!(lengths.len(), decays.len(), "one decay flag per tensor");
        Self {
            constants,
            lengths,
            decays,
        }
    }

    /// The input index of tensor `tensor`'s `role` (0 parameter, 1 gradient, 2 exp_avg,
    /// 3 exp_avg_sq).
    pub fn input_index(&self, role: usize, tensor: usize) -> usize {
        ADAMW_SCALAR_INPUTS + role * self.lengths.len() + tensor
    }
}

/// Elements per task of the CPU kernel.
const CHUNK: usize = 1 << 14;

impl Operator for AdamWStep {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let scalar = |index: usize| input_values(&inputs[index].0, &inputs[index].1)[0];
        let scalars = AdamWScalars {
            learning_rate: scalar(0),
            bias_correction1: scalar(1),
            bias_correction2: scalar(2),
            gradient_scale: scalar(3),
        };
        let count = self.lengths.len();
        let mut outputs: [Vec<Tensor>; 3] = Default::default();
        for (tensor, (&len, &decays)) in self.lengths.iter().zip(&self.decays).enumerate() {
            let read = |role: usize| {
                let (input, view) = &inputs[self.input_index(role, tensor)];
                let values = input_values(input, view);
                assert_eq!(values.len(), len, "AdamW input {role} of tensor {tensor}");
                values
            };
            let current = [read(0), read(1), read(2), read(3)];
            let mut updated = [vec![0f32; len], vec![0f32; len], vec![0f32; len]];
            let targets = updated.each_mut().map(|values| Shared(values.as_mut_ptr()));
            run_tasks(len.div_ceil(CHUNK), thread_count(), |task| {
                let targets = &targets;
                for i in task * CHUNK..((task + 1) * CHUNK).min(len) {
                    let new = adamw_element(
                        &self.constants,
                        &scalars,
                        decays,
                        current.each_ref().map(|values| values[i]),
                    );
                    for (target, value) in targets.iter().zip(new) {
                        // SAFETY: each task writes only its own elements, below `len`, of
                        // buffers that outlive the tasks.
                        unsafe { *target.0.add(i) = value };
                    }
                }
            });
            for (output, values) in outputs.iter_mut().zip(updated) {
                output.push(Tensor::new(values));
            }
        }
        debug_assert!(outputs.iter().all(|o| o.len() == count));
        outputs.into_iter().flatten().collect()
    }
}
