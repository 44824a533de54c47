use luminal::{op::InputTensor, op::Operator, prelude::*};

use super::input_values;

/// The adjoint of [`GatherRows`](super::GatherRows): `out[indexes[i], :] += values[i, :]` into a
/// zeroed `[rows, width]`; inputs `values [n, width]` and `indexes [n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterAddRows {
    pub rows: usize,
    pub width: usize,
}

impl Operator for ScatterAddRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_values(&inputs[0].0, &inputs[0].1);
        let indexes = input_values(&inputs[1].0, &inputs[1].1);
        let mut out = vec![0.0; self.rows * self.width];
        for (i, &index) in indexes.iter().enumerate() {
            let row = index as usize;
            assert!(
                row < self.rows,
                "scatter index {index} outside a table of {} rows",
                self.rows
            );
            let source = &values[i * self.width..(i + 1) * self.width];
            for (target, value) in out[row * self.width..(row + 1) * self.width]
                .iter_mut()
                .zip(source)
            {
                *target += value;
            }
        }
        vec![Tensor::new(out)]
    }
}
