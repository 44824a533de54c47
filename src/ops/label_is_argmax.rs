//! Whether each prediction got its label right (the masked-LM accuracy): the label's logit is its
//! row's highest. Read off the logits directly, as [`super::CrossEntropy`] reads its loss, so the
//! loss needs no shifted-logits buffer; not differentiable, and off the path to the loss.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::cross_entropy::{labelled_rows_op, per_labelled_row, LogitRows};

/// `out[r] = 1` where `z[r, label_r] >= z[r, j]` for every class `j` of the logits
/// `z = x + bias` (ties count as right), else 0, and 0 where the label is negative: inputs as
/// [`LogitRows`] orders them (any views), output `[rows]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelIsArgmax(pub LogitRows);

/// 1 where the row's logit at `label` is its maximum, else 0 (also without a label).
pub fn label_is_argmax_row(x: &[f32], label: Option<usize>) -> f32 {
    match label {
        Some(label) if x.iter().all(|&v| v <= x[label]) => 1.0,
        _ => 0.0,
    }
}

impl Operator for LabelIsArgmax {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        per_labelled_row(&inputs, self.0, label_is_argmax_row)
    }
}

/// 1 for each row of the logits `product + bias` whose label has the highest logit of its first
/// `classes` (0 for negative labels), by the [`LabelIsArgmax`] op.
pub fn label_is_argmax<N: Dimension, W: Dimension>(
    product: GraphTensor<(N, W)>,
    bias: GraphTensor<(W,)>,
    labels: GraphTensor<(N,)>,
    classes: usize,
) -> GraphTensor<(N,)> {
    labelled_rows_op(
        product,
        bias,
        labels,
        LabelIsArgmax(LogitRows::of::<N, W>(classes)),
    )
}

#[cfg(test)]
mod tests {
    use super::super::label_column::column_index;
    use super::*;

    #[test]
    fn the_label_must_reach_the_row_maximum() {
        let mut cx = Graph::new();
        #[rustfmt::skip]
        let x = cx.tensor::<R2<6, 4>>().set(vec![
            0.5, 2.0, -1.0, 1.0, // the label's is the highest
            0.5, 2.0, -1.0, 1.0, // another's is higher
            3.0, -2.0, 3.0, 0.0, // tied with the highest
            3.0, -2.0, 3.0, 0.0, // below a tie
            7.0, 7.0, 7.0, 7.0, // unused, though every logit is the maximum
            -1e4, -1e4, -2e4, -1e4, // large magnitudes, tied
        ]);
        let y = cx
            .tensor::<R1<6>>()
            .set(vec![1.0, 3.0, 2.0, 3.0, -100.0, 3.0]);
        let bias = cx.tensor::<R1<4>>().set(vec![0.0; 4]);
        let correct = label_is_argmax(x, bias, y, 4).retrieve();
        cx.execute();
        assert_eq!(correct.data(), [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn the_bias_is_added_before_the_comparison() {
        let mut cx = Graph::new();
        // The product alone has its maximum in column 0; with the bias, in column 1.
        let x = cx
            .tensor::<R2<2, 4>>()
            .set(vec![1.0, 0.5, 0.0, 0.0, 1.0, 0.5, 0.0, 0.0]);
        let bias = cx.tensor::<R1<4>>().set(vec![0.0, 1.0, 0.0, -1.0]);
        let y = cx.tensor::<R1<2>>().set(vec![0.0, 1.0]);
        let correct = label_is_argmax(x, bias, y, 4).retrieve();
        cx.execute();
        assert_eq!(correct.data(), [0.0, 1.0]);
    }

    /// Rows 200 wide of which 190 are classes; the padding holds every row's largest logits.
    /// Every third row's label holds its maximum, with or without the bias.
    #[test]
    fn many_rows_run_the_row_rule_over_the_classes_only() {
        let mut cx = Graph::new();
        let (rows, width, classes) = (120, 200, 190);
        let mut values: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 211) as f32)
            .collect();
        let labels: Vec<f32> = (0..rows)
            .map(|r| {
                if r % 3 == 0 {
                    -100.0
                } else {
                    ((r * 37) % classes) as f32
                }
            })
            .collect();
        // Every third row's label holds its maximum.
        for r in 0..rows {
            if r % 3 == 1 {
                values[r * width + labels[r] as usize] = 500.0;
            }
            values[r * width + classes..(r + 1) * width].fill(1e4);
        }
        // A bias of a few units per column, far below the labels' margin of hundreds.
        let bias_values: Vec<f32> = (0..width).map(|j| (j % 7) as f32 - 3.0).collect();
        let x = cx.tensor::<R2<120, 200>>().set(values.clone());
        let bias = cx.tensor::<R1<200>>().set(bias_values.clone());
        let y = cx.tensor::<R1<120>>().set(labels.clone());
        let correct = label_is_argmax(x, bias, y, classes).retrieve();
        cx.execute();
        let correct = correct.data();
        for r in 0..rows {
            let row: Vec<f32> = values[r * width..r * width + classes]
                .iter()
                .zip(&bias_values)
                .map(|(x, b)| x + b)
                .collect();
            let expected = label_is_argmax_row(&row, column_index(labels[r], classes));
            assert_eq!(correct[r], expected, "row {r}");
        }
        assert!(correct.iter().skip(1).step_by(3).all(|&v| v == 1.0));
        assert!(correct.iter().step_by(3).all(|&v| v == 0.0));
    }
}
