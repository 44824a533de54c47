//! Gradient checks of the backward rules against central finite differences, op by op and on
//! compositions, on random inputs.
use luminal::prelude::{symbolic::Expression, *};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{add_backward, TensorRef};
use crate::{
    nn::{masked_lm_loss, DecoderTerms, ParameterInit, ParameterRef},
    ops::cross_entropy,
    runtime::Backend,
};

/// A differentiable function of one parameter tensor of shape `S`, reduced to a scalar.
type Objective<S> = fn(GraphTensor<S>) -> GraphTensor<()>;

/// Compares autograd's gradient of `objective` at random `values` with central differences.
fn check<S: Shape>(objective: Objective<S>, values: Vec<f32>, tolerance: f32) {
    let mut graph = Box::new(Graph::new());
    let input = graph.named_tensor::<S>("x");
    let mut loss = objective(input).retrieve();
    let shape: Vec<usize> = S::realized_shape()
        .iter()
        .map(|d| d.to_usize().unwrap())
        .collect();
    let mut parameter = ParameterRef {
        name: "x".into(),
        id: input.id,
        shape,
        init: ParameterInit::Zeros,
    };
    graph.keep_tensors(input.id);
    let gradients =
        add_backward(&mut graph, TensorRef::of(loss), &[parameter.clone()], &[]).unwrap();
    let mut gradient = gradients[0].tensor;
    graph.retrieve_tensors(gradient.id);
    Backend::Cpu
        .compile(
            &mut graph,
            vec![&mut loss.id, &mut parameter.id, &mut gradient.id],
        )
        .unwrap();
    let evaluate = |graph: &mut Graph, values: &[f32]| {
        graph.set_tensor(parameter.id, 0, Tensor::new(values.to_vec()));
        graph.execute();
        let value = loss.data()[0];
        let gradient_values = gradient.typed::<()>(graph);
        let gradient_values = graph
            .get_tensor_ref(gradient_values.id, 0)
            .unwrap()
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .unwrap()
            .clone();
        graph.drop_tensors(vec![loss.id, gradient.id]);
        (value, gradient_values)
    };
    let (_, analytic) = evaluate(&mut graph, &values);
    let step = 1e-2;
    for (i, &analytic_i) in analytic.iter().enumerate() {
        let mut plus = values.clone();
        plus[i] += step;
        let mut minus = values.clone();
        minus[i] -= step;
        let numeric =
            (evaluate(&mut graph, &plus).0 - evaluate(&mut graph, &minus).0) / (2.0 * step);
        let scale = numeric.abs().max(analytic_i.abs()).max(1.0);
        assert!(
            (numeric - analytic_i).abs() / scale < tolerance,
            "element {i}: autograd {analytic_i}, finite differences {numeric}"
        );
    }
}

fn random(len: usize, low: f32, high: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(low..high)).collect()
}

#[test]
fn sum_of_products() {
    check::<R2<3, 4>>(
        |x| (x * x).sum_reduce::<_, Axes2<0, 1>>(),
        random(12, -1.0, 1.0, 1),
        1e-2,
    );
}

#[test]
fn division_by_a_reduction() {
    check::<R2<3, 4>>(
        |x| {
            let total = x.sum_reduce::<R1<3>, Axis<1>>();
            (x / total.expand::<R2<3, 4>, Axis<1>>()).sum_reduce::<_, Axes2<0, 1>>() * 0.5
                + (x * x).sum_reduce::<_, Axes2<0, 1>>()
        },
        random(12, 0.5, 1.5, 2),
        1e-2,
    );
}

#[test]
fn unary_ops() {
    check::<R1<5>>(
        |x| x.exp().sum_reduce::<_, Axis<0>>(),
        random(5, -1.0, 1.0, 3),
        1e-2,
    );
    check::<R1<5>>(
        |x| x.ln().sum_reduce::<_, Axis<0>>(),
        random(5, 0.5, 2.0, 4),
        1e-2,
    );
    check::<R1<5>>(
        |x| x.sin().sum_reduce::<_, Axis<0>>(),
        random(5, -2.0, 2.0, 5),
        1e-2,
    );
    check::<R1<5>>(
        |x| x.sqrt().sum_reduce::<_, Axis<0>>(),
        random(5, 0.5, 2.0, 6),
        1e-2,
    );
    check::<R1<5>>(
        |x| x.recip().sum_reduce::<_, Axis<0>>(),
        random(5, 0.5, 2.0, 7),
        1e-2,
    );
}

#[test]
fn softmax_with_weights() {
    check::<R2<2, 5>>(
        |x| {
            let weights = x.graph().arange::<Const<5>>().expand::<R2<2, 5>, Axis<0>>();
            (x.softmax::<1>() * weights).sum_reduce::<_, Axes2<0, 1>>()
        },
        random(10, -1.0, 1.0, 8),
        1e-2,
    );
}

#[test]
fn max_reduce_alone() {
    check::<R2<2, 5>>(
        |x| x.max_reduce::<R1<2>, Axis<1>>().sum_reduce::<_, Axis<0>>(),
        random(10, -1.0, 1.0, 9),
        1e-2,
    );
}

#[test]
fn shifted_exponentials() {
    check::<R2<2, 5>>(
        |x| {
            let shifted = x - x
                .max_reduce::<R1<2>, Axis<1>>()
                .expand::<R2<2, 5>, Axis<1>>();
            (shifted.exp() * x).sum_reduce::<_, Axes2<0, 1>>()
        },
        random(10, -1.0, 1.0, 10),
        1e-2,
    );
}

#[test]
fn cross_entropy_with_an_unused_row_and_a_padding_column() {
    check::<R2<3, 5>>(
        |x| {
            let labels = x.graph().tensor::<R1<3>>().set(vec![2.0, -100.0, 0.0]);
            let bias = x
                .graph()
                .tensor::<R1<5>>()
                .set(vec![0.5, -1.0, 0.25, 2.0, 3.0]);
            let weights = x.graph().arange::<Const<3>>() + 0.5;
            (cross_entropy(x, bias, labels, 4) * weights).sum_reduce::<_, Axis<0>>()
        },
        random(15, -2.0, 2.0, 11),
        1e-2,
    );
}

crate::bert_config! {
    /// Four prediction slots over a vocabulary of six (logits 64 wide): the loss's shapes, small
    /// enough for finite differences.
    FourPredictions {
        vocab: 6, hidden: 4, layers: 1, heads: 1, intermediate: 4,
        max_positions: 8, type_vocab: 1, seq: 8, batch: 2,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

/// The bias's gradient, the sum of the logits' over the rows, against finite differences.
#[test]
fn cross_entropy_bias_with_an_unused_row() {
    check::<R1<5>>(
        |bias| {
            let cx = bias.graph();
            let x = cx.tensor::<R2<3, 5>>().set(random(15, -2.0, 2.0, 13));
            let labels = cx.tensor::<R1<3>>().set(vec![2.0, -100.0, 3.0]);
            let weights = cx.arange::<Const<3>>() + 0.5;
            (cross_entropy(x, bias, labels, 4) * weights).sum_reduce::<_, Axis<0>>()
        },
        random(5, -2.0, 2.0, 14),
        1e-2,
    );
}

#[test]
fn masked_lm_loss_over_used_slots() {
    check::<R2<4, 64>>(
        |product| {
            let cx = product.graph();
            let labels = cx.tensor::<R1<4>>().set(vec![5.0, -100.0, 0.0, 3.0]);
            let bias = cx.tensor::<R1<64>>().set(random(64, -1.0, 1.0, 15));
            let logits = DecoderTerms { product, bias };
            masked_lm_loss::<FourPredictions>(logits, labels).loss
        },
        random(256, -3.0, 3.0, 12),
        1e-2,
    );
}

/// Random shapes and random views: the parameter is read through a permutation, a broadcast, a
/// slice or padding, then goes through a unary op, is multiplied by a fixed random tensor, and
/// summed over a random axis; the backward graph must agree with finite differences.
mod random_shapes {
    use luminal::op;
    use proptest::prelude::*;

    use super::super::tensor_ref::{Builder, TensorRef};
    use super::*;

    #[derive(Debug, Clone)]
    enum View {
        Permute,
        Broadcast(usize),
        Slice,
        Pad,
    }

    #[derive(Debug, Clone, Copy)]
    enum Unary {
        Exp2,
        Sin,
        Square,
    }

    fn build(
        graph: &mut Graph,
        shape: &[usize],
        view: &View,
        unary: Unary,
        reduce_axis: usize,
        weights_seed: u64,
    ) -> (NodeIndex, TensorRef) {
        let input = graph.named_tensor::<()>("x");
        graph.keep_tensors(input.id);
        let mut x = TensorRef::output(input.id, shape);
        match view {
            View::Permute => {
                let order: Vec<usize> = (0..shape.len()).rev().collect();
                x.view.permute(&order);
            }
            View::Broadcast(size) => x.view.expand(0, (*size).into()),
            View::Slice => {
                let slices: Vec<(Expression, Expression)> = shape
                    .iter()
                    .map(|&d| (Expression::from(d / 2), Expression::from(d)))
                    .collect();
                x.view.slice(&slices);
            }
            View::Pad => {
                let padding: Vec<(Expression, Expression)> = shape
                    .iter()
                    .map(|_| (Expression::from(1), Expression::from(2)))
                    .collect();
                x.view.pad(&padding);
            }
        }
        let mut builder = Builder { graph };
        let x = builder.reshape(x, &x.shape());
        let y = match unary {
            Unary::Exp2 => builder.unary(op::Exp2, x),
            Unary::Sin => builder.unary(op::Sin, x),
            Unary::Square => builder.mul(x, x),
        };
        let y_shape = y.shape();
        let weights_len: usize = y_shape.iter().product();
        let weights_input = builder.graph.named_tensor::<()>("w");
        let weights = random(weights_len, -1.0, 1.0, weights_seed);
        builder
            .graph
            .set_tensor(weights_input.id, 0, Tensor::new(weights));
        builder.graph.keep_tensors(weights_input.id);
        let w = TensorRef::output(weights_input.id, &y_shape);
        let weighted = builder.mul(y, w);
        let axis = reduce_axis % y_shape.len();
        let mut reduced = builder.sum_reduce(weighted, axis);
        while !reduced.shape().is_empty() {
            reduced = builder.sum_reduce(reduced, 0);
        }
        (input.id, reduced)
    }

    fn check_random(shape: Vec<usize>, view: View, unary: Unary, reduce_axis: usize, seed: u64) {
        let mut graph = Box::new(Graph::new());
        let (input, loss) = build(&mut graph, &shape, &view, unary, reduce_axis, seed);
        let mut loss = loss;
        let mut parameter = ParameterRef {
            name: "x".into(),
            id: input,
            shape: shape.clone(),
            init: ParameterInit::Zeros,
        };
        let gradients = add_backward(&mut graph, loss, &[parameter.clone()], &[]).unwrap();
        let mut gradient = gradients[0].tensor;
        graph.retrieve_tensors(gradient.id);
        graph.retrieve_tensors(loss.id);
        Backend::Cpu
            .compile(
                &mut graph,
                vec![&mut loss.id, &mut parameter.id, &mut gradient.id],
            )
            .unwrap();
        let read = |graph: &Graph, id| {
            graph
                .get_tensor_ref(id, 0)
                .unwrap()
                .data
                .as_any()
                .downcast_ref::<Vec<f32>>()
                .unwrap()
                .clone()
        };
        let values = random(shape.iter().product(), -1.0, 1.0, seed + 1);
        let mut evaluate = |values: &[f32]| {
            graph.set_tensor(parameter.id, 0, Tensor::new(values.to_vec()));
            graph.execute();
            let result = (read(&graph, loss.id)[0], read(&graph, gradient.id));
            graph.drop_tensors(vec![loss.id, gradient.id]);
            result
        };
        let (_, analytic) = evaluate(&values);
        let step = 1e-2;
        for (i, &analytic_i) in analytic.iter().enumerate() {
            let (mut plus, mut minus) = (values.clone(), values.clone());
            plus[i] += step;
            minus[i] -= step;
            let numeric = (evaluate(&plus).0 - evaluate(&minus).0) / (2.0 * step);
            let scale = numeric.abs().max(analytic_i.abs()).max(1.0);
            assert!(
                (numeric - analytic_i).abs() / scale < 2e-2,
                "{view:?} {unary:?} {shape:?}: element {i}: autograd {analytic_i}, finite differences {numeric}"
            );
        }
    }

    fn views() -> impl Strategy<Value = View> {
        prop_oneof![
            Just(View::Permute),
            (1usize..4).prop_map(View::Broadcast),
            Just(View::Slice),
            Just(View::Pad),
        ]
    }

    fn unaries() -> impl Strategy<Value = Unary> {
        prop_oneof![Just(Unary::Exp2), Just(Unary::Sin), Just(Unary::Square)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn views_unary_ops_and_reductions_match_finite_differences(
            shape in prop::collection::vec(1usize..4, 1..4),
            view in views(),
            unary in unaries(),
            reduce_axis in 0usize..4,
            seed in 0u64..1000,
        ) {
            check_random(shape, view, unary, reduce_axis, seed);
        }
    }
}
