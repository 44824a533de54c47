use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;

/// `base` with row `positions[i]` replaced by `rows[i]`: inputs `base [n, width]`,
/// `rows [m, width]`, `positions [m]` (distinct float indexes); output `[n, width]`. Token
/// dropping puts the kept tokens back among the dropped ones with it, so a dropped row keeps
/// exactly the value it had.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaceRows {
    pub rows: usize,
    pub width: usize,
}

impl Operator for ReplaceRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let mut out = input_values(&inputs[0].0, &inputs[0].1).into_owned();
        let rows = input_values(&inputs[1].0, &inputs[1].1);
        let positions = input_values(&inputs[2].0, &inputs[2].1);
        for (i, &position) in positions.iter().enumerate() {
            let row = row_index(position, self.rows);
            out[row * self.width..(row + 1) * self.width]
                .copy_from_slice(&rows[i * self.width..(i + 1) * self.width]);
        }
        vec![Tensor::new(out)]
    }
}

/// `values` with rows `positions` set to 0 (the gradient [`ReplaceRows`] passes to its base):
/// inputs `values [n, width]`, `positions [m]`; output `[n, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroRows {
    pub rows: usize,
    pub width: usize,
}

impl Operator for ZeroRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let mut out = input_values(&inputs[0].0, &inputs[0].1).into_owned();
        let positions = input_values(&inputs[1].0, &inputs[1].1);
        for &position in positions.iter() {
            let row = row_index(position, self.rows);
            out[row * self.width..(row + 1) * self.width].fill(0.0);
        }
        vec![Tensor::new(out)]
    }
}

fn row_index(position: f32, rows: usize) -> usize {
    let row = position as usize;
    assert!(
        position >= 0.0 && row < rows,
        "row index {position} outside a table of {rows} rows"
    );
    row
}

/// `base` with rows `positions` replaced by `rows`, by the [`ReplaceRows`] op.
pub fn replace_rows<N: Dimension, M: Dimension, W: Dimension>(
    base: GraphTensor<(N, W)>,
    rows: GraphTensor<(M, W)>,
    positions: GraphTensor<(M,)>,
) -> GraphTensor<(N, W)> {
    let size = |d: luminal::prelude::symbolic::Expression| d.to_usize().expect("static shapes");
    let op = ReplaceRows {
        rows: size(N::const_size()),
        width: size(W::const_size()),
    };
    let id = base
        .graph()
        .add_op(op)
        .input(base.id, 0, base.shape)
        .input(rows.id, 0, rows.shape)
        .input(positions.id, 0, positions.shape)
        .finish();
    GraphTensor::from_id(
        id,
        ShapeTracker::new(&[N::const_size(), W::const_size()]),
        base.graph_ref,
    )
}
