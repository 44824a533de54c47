//! The masked-LM loss of each prediction slot as one op, `logsumexp(row) - row[label]`, instead of
//! luminal's max, subtract, exp, sum, log and a column pick: one pass over the logits forward and
//! one backward ([`CrossEntropyGradient`]), which recomputes each row's maximum and exponential
//! sum from the logits rather than keeping the softmax (a `[predictions, vocab]` buffer). The
//! decoder's output bias is an input of these ops, added to each logit as it is read, so the
//! biased logits (the step's widest activation) are never written out and read back.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{
    input_values,
    label_column::column_index,
    last_axis::{map_row_values, map_rows},
};

/// The logits a loss op reads: `rows` rows of a product `x`, each `width` values wide in memory,
/// plus a `[width]` bias added to every row, of which the first `classes` columns are the
/// classes. The rest are padding (the decoder's logits are padded to
/// [`BertDims::logit_width`](crate::config::BertDims::logit_width)): the loss, its gradient and
/// the accuracy ignore them, and the gradient there is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogitRows {
    pub rows: usize,
    pub width: usize,
    pub classes: usize,
}

impl LogitRows {
    /// The input order of the product `x [rows, width]`, for every op over logit rows.
    pub const PRODUCT: u8 = 0;
    /// The input order of the bias `[width]`.
    pub const BIAS: u8 = 1;
    /// The input order of the labels `[rows]` (floats; negative for an unused slot).
    pub const LABELS: u8 = 2;

    /// The rows of a `[N, W]` tensor of static shape whose first `classes` columns are classes.
    pub fn of<N: Dimension, W: Dimension>(classes: usize) -> Self {
        let static_size = "dropbert graphs have static shapes";
        let rows = N::const_size().to_usize().expect(static_size);
        let width = W::const_size().to_usize().expect(static_size);
        assert!(
            (1..=width).contains(&classes),
            "{classes} classes in rows of width {width}"
        );
        Self {
            rows,
            width,
            classes,
        }
    }

    /// The op's product, bias and labels as host values.
    fn read<'a>(self, inputs: &'a [(InputTensor, ShapeTracker)]) -> RowInputs<'a> {
        let value = |order: u8| {
            let (input, view) = &inputs[order as usize];
            input_values(input, view)
        };
        let (x, bias, labels) = (value(Self::PRODUCT), value(Self::BIAS), value(Self::LABELS));
        assert_eq!(
            (x.len(), bias.len(), labels.len()),
            (self.rows * self.width, self.width, self.rows)
        );
        RowInputs {
            rows: self,
            x,
            bias,
            labels,
        }
    }
}

/// What an op over logit rows reads, on the host.
struct RowInputs<'a> {
    rows: LogitRows,
    x: std::borrow::Cow<'a, [f32]>,
    bias: std::borrow::Cow<'a, [f32]>,
    labels: std::borrow::Cow<'a, [f32]>,
}

impl RowInputs<'_> {
    /// Row `r`'s logits over the classes: its product plus the bias.
    fn logits(&self, r: usize) -> Vec<f32> {
        let LogitRows { width, classes, .. } = self.rows;
        self.x[r * width..r * width + classes]
            .iter()
            .zip(&self.bias[..classes])
            .map(|(x, b)| x + b)
            .collect()
    }

    fn label(&self, r: usize) -> Option<usize> {
        column_index(self.labels[r], self.rows.classes)
    }
}

/// `out[r] = ln(sum_j exp(z[r, j] - m_r)) - (z[r, label_r] - m_r)` over the classes `j` of the
/// logits `z = x + bias`, `m_r` their maximum, and 0 where the label is negative (an unused
/// prediction slot, -100): inputs as [`LogitRows`] orders them (any views), output `[rows]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropy(pub LogitRows);

/// The gradient of [`CrossEntropy`] with respect to the logits (so also to the product `x`):
/// inputs those of [`CrossEntropy`] and the output's gradient `d [rows]`, output
/// `dz[r, j] = (softmax(z[r])_j - [j == label_r]) * d[r]` over the classes, `[rows, width]`; 0
/// in the padding columns and in a row whose label is negative. The bias's gradient is its sum
/// over the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropyGradient(pub LogitRows);

impl CrossEntropyGradient {
    /// The input order of the output's gradient `d`.
    pub const OUTPUT_GRADIENT: u8 = 3;
}

/// A row's maximum `m` and `sum_j exp(x_j - m)`.
fn max_and_exponential_sum(x: &[f32]) -> (f32, f32) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, x.iter().map(|&v| (v - max).exp()).sum())
}

/// One row's cross-entropy against its label's column; 0 without one.
pub fn cross_entropy_row(x: &[f32], label: Option<usize>) -> f32 {
    let Some(label) = label else {
        return 0.0;
    };
    let (max, sum) = max_and_exponential_sum(x);
    sum.ln() - (x[label] - max)
}

/// One row's logit gradient into `out`, given the output's gradient `d`; zeros without a label.
pub fn cross_entropy_gradient_row(x: &[f32], label: Option<usize>, d: f32, out: &mut [f32]) {
    let Some(label) = label else {
        out.fill(0.0);
        return;
    };
    let (max, sum) = max_and_exponential_sum(x);
    let inverse = 1.0 / sum;
    for (j, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        let target = if j == label { 1.0 } else { 0.0 };
        *o = ((v - max).exp() * inverse - target) * d;
    }
}

impl Operator for CrossEntropy {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        per_labelled_row(&inputs, self.0, cross_entropy_row)
    }
}

/// One value per row of logits given the row's label (the inputs as [`LogitRows`] orders them):
/// what `row_rule` gives for the row's classes.
pub(super) fn per_labelled_row(
    inputs: &[(InputTensor, ShapeTracker)],
    rows: LogitRows,
    row_rule: impl Fn(&[f32], Option<usize>) -> f32 + Sync,
) -> Vec<Tensor> {
    let read = rows.read(inputs);
    vec![Tensor::new(map_row_values(rows.rows, rows.width, |r| {
        row_rule(&read.logits(r), read.label(r))
    }))]
}

impl Operator for CrossEntropyGradient {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let LogitRows {
            rows,
            width,
            classes,
        } = self.0;
        let read = self.0.read(&inputs);
        let (d, view) = &inputs[Self::OUTPUT_GRADIENT as usize];
        let d = input_values(d, view);
        assert_eq!(d.len(), rows);
        vec![Tensor::new(map_rows(rows, width, |at, out| {
            let r = at / width;
            let (class_columns, padding) = out.split_at_mut(classes);
            cross_entropy_gradient_row(&read.logits(r), read.label(r), d[r], class_columns);
            padding.fill(0.0);
        }))]
    }
}

/// `op`, one value per row of the logits `product + bias` given each row's label, added to the
/// graph.
pub(super) fn labelled_rows_op<N: Dimension, W: Dimension>(
    product: GraphTensor<(N, W)>,
    bias: GraphTensor<(W,)>,
    labels: GraphTensor<(N,)>,
    op: impl Operator + 'static,
) -> GraphTensor<(N,)> {
    let id = product
        .graph()
        .add_op(op)
        .input(product.id, 0, product.shape)
        .input(bias.id, 0, bias.shape)
        .input(labels.id, 0, labels.shape)
        .finish();
    GraphTensor::from_id(id, ShapeTracker::new(&[N::const_size()]), product.graph_ref)
}

/// The cross-entropy of each row of the logits `product + bias` (the bias added to every row)
/// over its first `classes` columns against its label (0 for negative labels), by the
/// [`CrossEntropy`] op.
pub fn cross_entropy<N: Dimension, W: Dimension>(
    product: GraphTensor<(N, W)>,
    bias: GraphTensor<(W,)>,
    labels: GraphTensor<(N,)>,
    classes: usize,
) -> GraphTensor<(N,)> {
    labelled_rows_op(
        product,
        bias,
        labels,
        CrossEntropy(LogitRows::of::<N, W>(classes)),
    )
}

#[cfg(test)]
mod tests {
    use super::super::last_axis::central_differences;
    use super::*;

    const UNUSED: f32 = -100.0;

    /// Logits of assorted magnitudes: some rows spread over thousands, some with a far outlier.
    fn logits(rows: usize, width: usize) -> Vec<f32> {
        (0..rows * width)
            .map(|i| {
                let (r, j) = (i / width, i % width);
                let v = ((i * 7919) % 101) as f32 / 9.0 - 5.0;
                match r % 4 {
                    0 => v * 300.0,
                    1 if j % 11 == 3 => v + 1e4,
                    2 => v - 3e4,
                    _ => v,
                }
            })
            .collect()
    }

    /// A bias of a few units, different in every column.
    fn bias(width: usize) -> Vec<f32> {
        (0..width)
            .map(|j| ((j * 13) % 17) as f32 / 4.0 - 2.0)
            .collect()
    }

    /// A label per row, every `unused_every`-th row unused.
    fn labels(rows: usize, width: usize, unused_every: usize) -> Vec<f32> {
        (0..rows)
            .map(|r| {
                if r % unused_every == 1 {
                    UNUSED
                } else {
                    ((r * 37) % width) as f32
                }
            })
            .collect()
    }

    #[test]
    fn the_op_equals_the_chain_of_primitives() {
        let mut cx = Graph::new();
        let product = cx.tensor::<R2<12, 50>>().set(logits(12, 50));
        let bias = cx.tensor::<R1<50>>().set(bias(50));
        let y = cx.tensor::<R1<12>>().set(labels(12, 50, 5));
        let fused = cross_entropy(product, bias, y, 50).retrieve();
        // The loss as luminal's primitives give it: the bias added, max, shift, exp, sum, log,
        // and the label's column picked by a one-hot product.
        let x = product + bias.expand::<R2<12, 50>, Axis<0>>();
        let shifted = x - x
            .max_reduce::<R1<12>, Axis<1>>()
            .expand::<R2<12, 50>, Axis<1>>();
        let log_normalizer = shifted.exp().sum_reduce::<R1<12>, Axis<1>>().ln();
        let predicted = -y.less_than(cx.constant(0.0).expand()) + 1.0;
        let one_hot = cx
            .arange::<Const<50>>()
            .expand::<R2<12, 50>, Axis<0>>()
            .equals(y.expand::<R2<12, 50>, Axis<1>>());
        let label_logit = (shifted * one_hot).sum_reduce::<R1<12>, Axis<1>>();
        let reference = ((log_normalizer - label_logit) * predicted).retrieve();
        cx.execute();
        let (fused, reference) = (fused.data(), reference.data());
        for (r, (a, b)) in fused.iter().zip(&reference).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "row {r}: {a} vs {b}"
            );
        }
        assert!(fused.iter().skip(1).step_by(5).all(|&v| v == 0.0));
        assert!(
            fused.iter().any(|&v| v > 1e3),
            "some label is far below its row's max"
        );
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let width = 9;
        let x: Vec<f64> = logits(4, width)[3 * width..]
            .iter()
            .map(|&v| v as f64 / 3.0)
            .collect();
        let (label, d) = (4, 0.7);
        // The directional derivative: L(x) = d * cross_entropy(x, label).
        let loss = |x: &[f64]| {
            let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = x.iter().map(|v| (v - max).exp()).sum();
            d * (sum.ln() - (x[label] - max))
        };
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut dx = vec![0.0; width];
        cross_entropy_gradient_row(&x32, Some(label), d as f32, &mut dx);
        let numeric = central_differences(loss, &x, 1e-5);
        for j in 0..width {
            assert!(
                (dx[j] as f64 - numeric[j]).abs() < 1e-6,
                "{j}: {} vs {}",
                dx[j],
                numeric[j]
            );
        }
        assert!(
            (cross_entropy_row(&x32, Some(label)) as f64 - loss(&x) / d).abs() < 1e-6,
            "the forward row rule"
        );
    }

    #[test]
    fn an_unused_row_has_no_loss_and_no_gradient() {
        let x = [3.0, -1.0, 2.5];
        assert_eq!(cross_entropy_row(&x, None), 0.0);
        let mut dx = [1.0; 3];
        cross_entropy_gradient_row(&x, None, 2.0, &mut dx);
        assert_eq!(dx, [0.0; 3]);
    }

    /// Rows 300 wide of which 290 are classes: the padding holds the rows' largest logits, which
    /// would change every row's loss were they read.
    #[test]
    fn the_ops_run_the_row_rules_over_the_classes_only() {
        let mut cx = Graph::new();
        let (rows, width, classes) = (70, 300, 290);
        let mut x_values = logits(rows, width);
        for r in 0..rows {
            x_values[r * width + classes..(r + 1) * width].fill(5e4);
        }
        let y_values = labels(rows, classes, 6);
        let d_values: Vec<f32> = (0..rows).map(|r| ((r % 13) as f32 - 6.0) / 6.0).collect();
        let bias_values = bias(width);
        let x = cx.tensor::<R2<70, 300>>().set(x_values.clone());
        let b = cx.tensor::<R1<300>>().set(bias_values.clone());
        let y = cx.tensor::<R1<70>>().set(y_values.clone());
        let d = cx.tensor::<R1<70>>().set(d_values.clone());
        let losses = cross_entropy(x, b, y, classes).retrieve();
        let gradient = CrossEntropyGradient(LogitRows::of::<Const<70>, Const<300>>(classes));
        let dx = GraphTensor::<R2<70, 300>>::from_id(
            cx.add_op(gradient)
                .input(x.id, 0, x.shape)
                .input(b.id, 0, b.shape)
                .input(y.id, 0, y.shape)
                .input(d.id, 0, d.shape)
                .finish(),
            x.shape,
            x.graph_ref,
        )
        .retrieve();
        cx.execute();
        let (losses, dx) = (losses.data(), dx.data());
        for r in 0..rows {
            let at = r * width..r * width + classes;
            let label = column_index(y_values[r], classes);
            let row: Vec<f32> = x_values[at.clone()]
                .iter()
                .zip(&bias_values)
                .map(|(x, b)| x + b)
                .collect();
            assert_eq!(losses[r], cross_entropy_row(&row, label));
            let mut expected = vec![0.0; classes];
            cross_entropy_gradient_row(&row, label, d_values[r], &mut expected);
            assert_eq!(&dx[at], &expected[..]);
            assert!(dx[r * width + classes..(r + 1) * width]
                .iter()
                .all(|&v| v == 0.0));
        }
    }

    #[test]
    fn the_op_reads_its_logits_through_a_view() {
        let mut cx = Graph::new();
        let values = logits(6, 5);
        let x = cx.tensor::<R2<5, 6>>().set(values.clone());
        let label_values = vec![0.0, 4.0, UNUSED, 2.0, 1.0, 3.0];
        let y = cx.tensor::<R1<6>>().set(label_values.clone());
        let bias_values = bias(5);
        let b = cx.tensor::<R1<5>>().set(bias_values.clone());
        let losses = cross_entropy(x.permute::<R2<6, 5>, _>(), b, y, 5).retrieve();
        cx.execute();
        for (r, &loss) in losses.data().iter().enumerate() {
            let row: Vec<f32> = (0..5).map(|j| values[j * 6 + r] + bias_values[j]).collect();
            let label = column_index(label_values[r], 5);
            assert_eq!(loss, cross_entropy_row(&row, label));
        }
    }

    #[test]
    #[should_panic(expected = "outside rows of width")]
    fn a_label_outside_the_row_panics() {
        let mut cx = Graph::new();
        let x = cx.tensor::<R2<2, 4>>().set(vec![0.0; 8]);
        let b = cx.tensor::<R1<4>>().set(vec![0.0; 4]);
        let y = cx.tensor::<R1<2>>().set(vec![1.0, 4.0]);
        cross_entropy(x, b, y, 4).retrieve();
        cx.execute();
    }
}
