//! Reading a program's tensors on the host, wherever the backend keeps them: the loss, gradients,
//! weights, optimizer state, the importance table, kept positions.
use luminal::prelude::*;

/// A tensor's values as host `f32`s: copied back from the GPU where it lives there. `None` for
/// data of another kind.
pub fn tensor_values(tensor: &Tensor) -> Option<Vec<f32>> {
    #[cfg(feature = "cuda")]
    {
        crate::compile::cuda::copy_to_host(tensor)
    }
    #[cfg(not(feature = "cuda"))]
    {
        tensor.data.as_any().downcast_ref::<Vec<f32>>().cloned()
    }
}

/// The buffer of node `id`'s output on the host, if it is set.
pub fn host_values(graph: &Graph, id: NodeIndex) -> Option<Vec<f32>> {
    tensor_values(graph.get_tensor_ref(id, 0)?)
}

/// The logical values of an output (its buffer read through the tensor's view), as
/// `GraphTensor::data` gives them for host buffers.
pub fn output_values<S: Shape>(tensor: GraphTensor<S>) -> Vec<f32> {
    let buffer = host_values(tensor.graph(), tensor.id).expect("the output was computed");
    through_view(buffer, tensor.shape)
}

/// An output taken out of its program after an execution, so that the next execution computes
/// it again while this one's value is still to be read. On the GPU its copy to the host may
/// still be in flight: reading it waits for that copy, and only for the work queued before it.
#[derive(Debug)]
pub struct TakenOutput {
    tensor: Tensor,
    view: ShapeTracker,
}

impl TakenOutput {
    /// Takes `output`'s value out of `graph`, its graph; `None` where the execution did not
    /// compute it.
    pub fn take<S: Shape>(graph: &mut Graph, output: GraphTensor<S>) -> Option<Self> {
        let tensor = graph.tensors.remove(&(output.id, 0))?;
        Some(Self {
            tensor,
            view: output.shape,
        })
    }

    /// The logical values, as [`output_values`] gives them.
    pub fn values(&self) -> Vec<f32> {
        let buffer = tensor_values(&self.tensor).expect("an output of floats");
        through_view(buffer, self.view)
    }
}

/// `buffer` read through `view`: the logical values of a tensor.
fn through_view(buffer: Vec<f32>, view: ShapeTracker) -> Vec<f32> {
    let len = view
        .n_elements()
        .to_usize()
        .expect("dropbert graphs have static shapes");
    if view.is_contiguous() && !view.is_sliced() && !view.is_padded() {
        let mut buffer = buffer;
        buffer.truncate(len);
        return buffer;
    }
    let (index, valid) = (view.index_expression(), view.valid_expression());
    (0..len)
        .map(|i| {
            if valid.exec_single_var(i) != 0 {
                buffer[index.exec_single_var(i)]
            } else {
                0.0
            }
        })
        .collect()
}
