use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;

/// `out[i] = values[i, columns[i]]`, 0 where the column is negative (an unpredicted position's
/// label, -100): inputs `values [n, width]` and `columns [n]` (floats), output `[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PickColumns {
    pub width: usize,
}

impl Operator for PickColumns {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_values(&inputs[0].0, &inputs[0].1);
        let columns = input_values(&inputs[1].0, &inputs[1].1);
        let out = columns
            .iter()
            .enumerate()
            .map(|(row, &column)| match column_index(column, self.width) {
                Some(column) => values[row * self.width + column],
                None => 0.0,
            })
            .collect::<Vec<f32>>();
        vec![Tensor::new(out)]
    }
}

/// The adjoint of [`PickColumns`]: `out[i, columns[i]] = values[i]` in a zeroed `[n, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceColumns {
    pub width: usize,
}

impl Operator for PlaceColumns {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_values(&inputs[0].0, &inputs[0].1);
        let columns = input_values(&inputs[1].0, &inputs[1].1);
        let mut out = vec![0.0; columns.len() * self.width];
        for (row, (&value, &column)) in values.iter().zip(columns.iter()).enumerate() {
            if let Some(column) = column_index(column, self.width) {
                out[row * self.width + column] = value;
            }
        }
        vec![Tensor::new(out)]
    }
}

/// The column a float label names, `None` for a negative one; panics outside the row.
pub(super) fn column_index(column: f32, width: usize) -> Option<usize> {
    if column < 0.0 {
        return None;
    }
    let column = column as usize;
    assert!(
        column < width,
        "column {column} outside rows of width {width}"
    );
    Some(column)
}

/// `values[i, columns[i]]` for each row (0 for negative columns), by the [`PickColumns`] op.
pub fn pick_columns<N: Dimension, W: Dimension>(
    values: GraphTensor<(N, W)>,
    columns: GraphTensor<(N,)>,
) -> GraphTensor<(N,)> {
    let width = W::const_size().to_usize().expect("static shapes");
    let id = values
        .graph()
        .add_op(PickColumns { width })
        .input(values.id, 0, values.shape)
        .input(columns.id, 0, columns.shape)
        .finish();
    GraphTensor::from_id(id, ShapeTracker::new(&[N::const_size()]), values.graph_ref)
}
