use luminal::{
    op::{self, Operator},
    prelude::{symbolic::Expression, *},
};

/// A node output read through a view: what a graph edge carries. Autograd builds untyped
/// tensors of any rank, so it works with these instead of shape-typed `GraphTensor`s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRef {
    pub id: NodeIndex,
    pub view: ShapeTracker,
}

impl TensorRef {
    /// The contiguous output of node `id` with logical `shape`.
    pub fn output(id: NodeIndex, shape: &[usize]) -> Self {
        Self {
            id,
            view: contiguous(shape),
        }
    }

    pub fn of<S: Shape>(tensor: GraphTensor<S>) -> Self {
        Self {
            id: tensor.id,
            view: tensor.shape,
        }
    }

    /// The logical shape the view presents.
    pub fn shape(&self) -> Vec<usize> {
        logical_shape(&self.view)
    }

    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// As a shape-typed graph tensor (`S` must have this logical shape).
    pub fn typed<S: Shape>(self, graph: &mut Graph) -> GraphTensor<S> {
        GraphTensor::from_id(self.id, self.view, graph)
    }

    pub fn is_plain(&self) -> bool {
        self.view.is_contiguous() && !self.view.is_sliced() && !self.view.is_padded()
    }
}

pub(crate) fn contiguous(shape: &[usize]) -> ShapeTracker {
    ShapeTracker::new(&shape.iter().map(|&d| d.into()).collect::<Vec<Expression>>())
}

pub(crate) fn logical_shape(view: &ShapeTracker) -> Vec<usize> {
    view.shape()
        .iter()
        .map(|d| d.to_usize().expect("autograd needs static shapes"))
        .collect()
}

/// Builds backward nodes on a graph.
pub(crate) struct Builder<'g> {
    pub graph: &'g mut Graph,
}

impl Builder<'_> {
    fn node(&mut self, op: impl Operator + 'static, inputs: &[TensorRef]) -> NodeIndex {
        let mut new = self.graph.add_op(op);
        for input in inputs {
            new = new.input(input.id, 0, input.view);
        }
        new.finish()
    }

    /// A scalar constant read as a tensor of `shape` (every axis broadcast).
    pub fn constant(&mut self, value: f32, shape: &[usize]) -> TensorRef {
        let dyn_map = &self.graph.dyn_map as *const _;
        let id = self.node(op::Constant(op::ConstantValue::Float(value), dyn_map), &[]);
        let mut view = ShapeTracker::new(&[]);
        for (axis, &size) in shape.iter().enumerate() {
            view.expand(axis, size.into());
        }
        TensorRef { id, view }
    }

    /// A unary primitive over `x`'s values (luminal's unary ops read the input's buffer and
    /// ignore its view, so a view that is not the plain buffer is made contiguous first).
    pub fn unary(&mut self, op: impl Operator + 'static, x: TensorRef) -> TensorRef {
        let shape = x.shape();
        let x = self.reshape(x, &shape);
        TensorRef::output(self.node(op, &[x]), &shape)
    }

    pub fn binary(&mut self, op: impl Operator + 'static, a: TensorRef, b: TensorRef) -> TensorRef {
        let shape = a.shape();
        debug_assert_eq!(shape, b.shape(), "elementwise operands differ in shape");
        TensorRef::output(self.node(op, &[a, b]), &shape)
    }

    pub fn add(&mut self, a: TensorRef, b: TensorRef) -> TensorRef {
        self.binary(op::Add, a, b)
    }

    pub fn mul(&mut self, a: TensorRef, b: TensorRef) -> TensorRef {
        self.binary(op::Mul, a, b)
    }

    pub fn scale(&mut self, a: TensorRef, factor: f32) -> TensorRef {
        let factor = self.constant(factor, &a.shape());
        self.mul(a, factor)
    }

    pub fn less_than(&mut self, a: TensorRef, b: TensorRef) -> TensorRef {
        self.binary(op::LessThan, a, b)
    }

    pub fn sum_reduce(&mut self, x: TensorRef, axis: usize) -> TensorRef {
        let mut shape = x.shape();
        shape.remove(axis);
        TensorRef::output(self.node(op::SumReduce(axis), &[x]), &shape)
    }

    /// `x` broadcast along a new axis `axis` of `size` (a view, no node).
    pub fn expand(&mut self, mut x: TensorRef, axis: usize, size: usize) -> TensorRef {
        x.view.expand(axis, size.into());
        x
    }

    /// `x` as a contiguous tensor of `shape` (same number of elements), copying only if its view
    /// is not already the plain buffer.
    pub fn reshape(&mut self, x: TensorRef, shape: &[usize]) -> TensorRef {
        debug_assert_eq!(x.numel(), shape.iter().product::<usize>());
        let id = if x.is_plain() {
            x.id
        } else {
            self.node(op::Contiguous, &[x])
        };
        TensorRef::output(id, shape)
    }
}
