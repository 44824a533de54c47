//! The generated kernels' plans run on the CPU inside real graphs: after the passes the CUDA
//! pipeline runs before luminal_cuda (contractions, elementwise fusion), every fused kernel and
//! every reduction the CUDA pipeline would take is swapped for a CPU evaluation of exactly the plan
//! it would compile, and the graph's results are held against luminal's unfused graph. This
//! checks what the unit tests cannot: the views and axes that real graphs hand the generators.
use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{elementwise_source::ElementwiseSource, reduce_source::ReduceSource};
use crate::{
    compile::cpu::{ContractionCompiler, ElementwiseFusionCompiler, FusedElementwise},
    nn::gelu,
    ops::input_buffer,
};

#[derive(Debug, Clone, LuminalEqFalse)]
struct EmulatedElementwise(ElementwiseSource);

impl Operator for EmulatedElementwise {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let buffers: Vec<&[f32]> = inputs.iter().map(|(t, _)| input_buffer(t)).collect();
        self.0.eval(&buffers).into_iter().map(Tensor::new).collect()
    }
}

#[derive(Debug, Clone, LuminalEqFalse)]
struct EmulatedReduce(ReduceSource);

impl Operator for EmulatedReduce {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        vec![Tensor::new(self.0.eval(input_buffer(&inputs[0].0)))]
    }
}

/// Swaps fused kernels and reductions for their plans' CPU evaluations; returns how many of each.
fn emulate(graph: &mut Graph) -> (usize, usize) {
    let (mut fused, mut reductions) = (0, 0);
    let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
    for node in nodes {
        let op = graph.graph.node_weight(node).unwrap().as_any();
        let emulated: Box<dyn Operator> = if let Some(op) = op.downcast_ref::<FusedElementwise>() {
            fused += 1;
            let inputs = graph.get_sources(node).len();
            Box::new(EmulatedElementwise(ElementwiseSource::new(op, inputs)))
        } else if let Some(source) = ReduceSource::of_node(graph, node) {
            reductions += 1;
            Box::new(EmulatedReduce(source))
        } else {
            continue;
        };
        *graph.graph.node_weight_mut(node).unwrap() = emulated;
    }
    (fused, reductions)
}

fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect()
}

/// Erases a tensor's shape so that outputs of several shapes share one type.
fn erased<S: Shape>(t: GraphTensor<S>) -> GraphTensor<()> {
    GraphTensor::from_id(t.id, t.shape, t.graph())
}

/// Runs the graph `build` makes unfused and emulated; asserts equal results within rounding and
/// returns the numbers of fused kernels and reductions emulated.
fn compare(build: impl Fn(&mut Graph, &mut StdRng) -> Vec<GraphTensor<()>>) -> (usize, usize) {
    let run = |emulated: bool| {
        let mut rng = StdRng::seed_from_u64(3);
        let mut cx = Graph::new();
        let mut outputs = build(&mut cx, &mut rng);
        for output in &mut outputs {
            output.retrieve();
        }
        let mut counts = (0, 0);
        if emulated {
            cx.compile(
                (
                    GenericCompiler::default(),
                    ContractionCompiler,
                    ElementwiseFusionCompiler,
                ),
                &mut outputs,
            );
            counts = emulate(&mut cx);
        } else {
            cx.compile(GenericCompiler::default(), &mut outputs);
        }
        cx.execute();
        (outputs.iter().map(|o| o.data()).collect::<Vec<_>>(), counts)
    };
    let (expected, _) = run(false);
    let (actual, counts) = run(true);
    for (e, a) in expected.iter().zip(&actual) {
        assert_eq!(e.len(), a.len());
        for (x, y) in e.iter().zip(a) {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
    counts
}

#[test]
fn layer_norm_softmax_and_gelu_match_unfused() {
    let (fused, reductions) = compare(|cx, rng| {
        let x = cx.tensor::<R3<4, 16, 40>>().set(random(4 * 16 * 40, rng));
        let bias = cx.tensor::<R1<40>>().set(random(40, rng));
        let normed = x.layer_norm::<2, _>(1e-5);
        let activated = gelu(normed + bias.expand::<R3<4, 16, 40>, _>());
        // Attention-like scores over a permuted view: softmax along the middle axis.
        let scores = x.permute::<R3<4, 40, 16>, Axes3<0, 2, 1>>().softmax::<2>();
        vec![erased(activated), erased(scores)]
    });
    // (The variance's sum of squares is a contraction.)
    assert!(fused >= 3 && reductions >= 3, "{fused} {reductions}");
}

#[test]
fn column_and_broadcast_reductions_match_unfused() {
    let (_, reductions) = compare(|cx, rng| {
        let x = cx.tensor::<R3<6, 50, 33>>().set(random(6 * 50 * 33, rng));
        // A bias gradient: the sum over every token, column by column.
        let columns = x.sum_reduce::<R1<33>, Axes2<0, 1>>();
        let peaks = (x * 3.0).max_reduce::<R2<6, 33>, Axis<1>>();
        let y = cx.tensor::<R1<7>>().set(random(7, rng));
        // A reduction over a broadcast axis, and a short one.
        let broadcast = y
            .expand::<R2<7, 40>, Axis<1>>()
            .sum_reduce::<R1<7>, Axis<1>>();
        let short = x.sum_reduce::<R2<50, 33>, Axis<0>>();
        vec![
            erased(columns),
            erased(peaks),
            erased(broadcast),
            erased(short),
        ]
    });
    assert!(reductions >= 5, "{reductions}");
}
