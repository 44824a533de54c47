use luminal::{
    op::InputTensor,
    op::Operator,
    prelude::{symbolic::Expression, *},
};

use super::input_values;

/// `out[i, :] = table[indexes[i], :]`: inputs `table [rows, width]` and `indexes [n]` (float ids),
/// output `[n, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherRows {
    pub rows: usize,
    pub width: usize,
}

impl Operator for GatherRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let table = input_values(&inputs[0].0, &inputs[0].1);
        let indexes = input_values(&inputs[1].0, &inputs[1].1);
        let mut out = Vec::with_capacity(indexes.len() * self.width);
        for &index in indexes.iter() {
            let row = index as usize;
            assert!(
                row < self.rows,
                "gather index {index} outside a table of {} rows",
                self.rows
            );
            out.extend_from_slice(&table[row * self.width..(row + 1) * self.width]);
        }
        vec![Tensor::new(out)]
    }
}

/// Rows `indexes[i]` of `table`, as `[N, D]`, by the indexed [`GatherRows`] op.
pub fn gather_rows<Rows: Dimension, D: Dimension, N: Dimension>(
    table: GraphTensor<(Rows, D)>,
    indexes: GraphTensor<(N,)>,
) -> GraphTensor<(N, D)> {
    let static_size = |d: Expression| d.to_usize().expect("static shapes");
    let op = GatherRows {
        rows: static_size(Rows::const_size()),
        width: static_size(D::const_size()),
    };
    let id = table
        .graph()
        .add_op(op)
        .input(table.id, 0, table.shape)
        .input(indexes.id, 0, indexes.shape)
        .finish();
    GraphTensor::from_id(
        id,
        ShapeTracker::new(&[N::const_size(), D::const_size()]),
        table.graph_ref,
    )
}
