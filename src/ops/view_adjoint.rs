use std::sync::{Arc, OnceLock};

use luminal::{op::InputTensor, op::Operator, prelude::*};

use super::input_values;

/// The adjoint of reading a buffer through `view`: takes values of the view's logical shape and
/// accumulates each into the buffer element it was read from (nothing for padding), giving a
/// buffer of `physical_len` elements. Autograd uses it for views with slices or padding.
#[derive(Clone)]
pub struct ViewAdjoint {
    pub view: ShapeTracker,
    pub physical_len: usize,
    /// Per logical element, the buffer element it was read from ([`PADDING`] for none): the
    /// view's index expressions evaluated once, on the first execution, instead of per element
    /// of every execution.
    targets: OnceLock<Arc<[u32]>>,
}

/// The target of a logical element that reads padding.
const PADDING: u32 = u32::MAX;

impl ViewAdjoint {
    pub fn new(view: ShapeTracker, physical_len: usize) -> Self {
        Self {
            view,
            physical_len,
            targets: OnceLock::new(),
        }
    }

    fn targets(&self, len: usize) -> &[u32] {
        self.targets.get_or_init(|| {
            assert!(self.physical_len < PADDING as usize, "view too large");
            let (index, valid) = (self.view.index_expression(), self.view.valid_expression());
            (0..len)
                .map(|i| {
                    if valid.exec_single_var(i) != 0 {
                        index.exec_single_var(i) as u32
                    } else {
                        PADDING
                    }
                })
                .collect()
        })
    }
}

impl std::fmt::Debug for ViewAdjoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewAdjoint")
            .field("view", &self.view)
            .field("physical_len", &self.physical_len)
            .finish()
    }
}

impl PartialEq for ViewAdjoint {
    fn eq(&self, other: &Self) -> bool {
        self.view == other.view && self.physical_len == other.physical_len
    }
}

impl Operator for ViewAdjoint {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_values(&inputs[0].0, &inputs[0].1);
        let mut out = vec![0.0; self.physical_len];
        for (&target, value) in self.targets(values.len()).iter().zip(values.iter()) {
            if target != PADDING {
                out[target as usize] += value;
            }
        }
        vec![Tensor::new(out)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [4, 6] buffer read as rows 1..3, padded by one column on the right.
    fn view() -> ShapeTracker {
        let mut view = ShapeTracker::new(&[4.into(), 6.into()]);
        view.slice(&[(1.into(), 3.into()), (0.into(), (i32::MAX as usize).into())]);
        view.pad(&[(0.into(), 0.into()), (0.into(), 1.into())]);
        view
    }

    #[test]
    fn each_value_goes_back_to_the_element_it_was_read_from() {
        let view = view();
        let len = view.n_elements().to_usize().unwrap();
        assert_eq!(len, 2 * 7);
        let values: Vec<f32> = (1..=len).map(|v| v as f32).collect();
        let mut op = ViewAdjoint::new(view, 24);
        for _ in 0..2 {
            let out = op.process(vec![(
                InputTensor::Owned(Tensor::new(values.clone())),
                ShapeTracker::new(&[len.into()]),
            )]);
            let out = out[0].data.as_any().downcast_ref::<Vec<f32>>().unwrap();
            let mut expected = vec![0.0; 24];
            for row in 0..2 {
                for column in 0..6 {
                    expected[(row + 1) * 6 + column] = values[row * 7 + column];
                }
            }
            assert_eq!(out, &expected);
        }
    }
}
