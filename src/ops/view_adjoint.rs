use luminal::{op::InputTensor, op::Operator, prelude::*};

use super::input_values;

/// The adjoint of reading a buffer through `view`: takes values of the view's logical shape and
/// accumulates each into the buffer element it was read from (nothing for padding), giving a
/// buffer of `physical_len` elements. Autograd uses it for views with slices or padding.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewAdjoint {
    pub view: ShapeTracker,
    pub physical_len: usize,
}

impl Operator for ViewAdjoint {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_values(&inputs[0].0, &inputs[0].1);
        let (index, valid) = (self.view.index_expression(), self.view.valid_expression());
        let mut out = vec![0.0; self.physical_len];
        for (i, value) in values.iter().enumerate() {
            if valid.exec_single_var(i) != 0 {
                out[index.exec_single_var(i)] += value;
            }
        }
        vec![Tensor::new(out)]
    }
}
