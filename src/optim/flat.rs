//! Parameters of every shape as flat vectors. An optimizer update is elementwise apart from whole-
//! tensor norms, so the update subgraph views each parameter, gradient and state tensor as one
//! contiguous vector of its `numel` elements: one code path for every parameter shape.
use luminal::prelude::*;

/// A tensor viewed as a vector whose length is known when the graph is built (held by its shape
/// tracker, not its type).
pub type FlatTensor = GraphTensor<(Dyn<'-'>,)>;

/// The node `id`'s output (a contiguous buffer of `len` values, such as a graph input) as a vector.
pub fn flat_view(graph: &mut Graph, id: NodeIndex, len: usize) -> FlatTensor {
    GraphTensor::from_id(id, ShapeTracker::new(&[len.into()]), graph)
}

/// `tensor` in row-major order as a vector, through a contiguous copy where its view is permuted,
/// broadcast, sliced or padded.
pub fn flatten<S: Shape>(tensor: GraphTensor<S>) -> FlatTensor {
    let len = static_shape(&tensor.shape)
        .expect("optimizer tensors have static shapes")
        .iter()
        .product::<usize>();
    tensor.contiguous().dyn_reshape(vec![len.into()])
}

/// The logical shape of a view, if every dimension is a number.
pub fn static_shape(shape: &ShapeTracker) -> Option<Vec<usize>> {
    shape.shape().iter().map(|d| d.to_usize()).collect()
}

/// The number of elements of a flat tensor.
pub fn flat_len(tensor: FlatTensor) -> usize {
    static_shape(&tensor.shape)
        .and_then(|shape| shape.first().copied())
        .expect("flat tensors have a known length")
}

/// A scalar repeated `len` times (a broadcast view, no copy).
pub fn broadcast(scalar: GraphTensor<R0>, len: usize) -> FlatTensor {
    let mut shape = scalar.shape;
    shape.expand(0, len.into());
    GraphTensor::from_id(scalar.id, shape, scalar.graph_ref)
}

/// The Euclidean norm `sqrt(sum(x * x))`.
pub fn l2_norm(tensor: FlatTensor) -> GraphTensor<R0> {
    (tensor * tensor).sum_reduce::<R0, Axis<0>>().sqrt()
}

/// 1 where `x > 0`, else 0.
pub fn is_positive(x: GraphTensor<R0>) -> GraphTensor<R0> {
    x.graph().constant(0.0).less_than(x)
}

/// `min(x, limit)` from a comparison and arithmetic only, so every backend runs it; exact in both
/// branches (`x * 1 + 0` or `x * 0 + limit`).
pub fn min_with(x: GraphTensor<R0>, limit: f32) -> GraphTensor<R0> {
    let below = x.less_than(x.graph().constant(limit));
    below * x + (-below + 1.0) * limit
}
