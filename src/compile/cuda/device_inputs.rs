//! Graph inputs whose values stay on the device from one execution to the next: the weights, the
//! optimizer state and token dropping's importance table, each replaced after every step by the
//! updated value the step computed on the device. luminal_cuda gives every graph input an upload
//! node; for these the node only hands on a buffer already on the device, but each costs a round
//! of the interpreter, and a step's uploads all run before its first kernel (see
//! `host_transfers`) while the device waits: 0.9-1.1 ms a BERT-base step over 629 uploads in
//! run 71. [`ReadInPlace`] removes these inputs' upload nodes, so that their readers read the
//! input itself; [`upload_host_values`] then uploads, before an execution, any of them that was
//! set on the host (the first step's weights, a checkpoint's optimizer state).
use luminal::{
    op::Operator,
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

/// Makes the readers of `inputs`' uploads (ops `is_upload` holds for) read the inputs directly,
/// and removes those uploads. An upload that is itself an output or kept stays.
pub struct ReadInPlace<F> {
    pub inputs: Vec<NodeIndex>,
    pub is_upload: F,
}

impl<F: Fn(&dyn Operator) -> bool> Compiler for ReadInPlace<F> {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, _: T) {
        for &input in &self.inputs {
            let uploads: Vec<NodeIndex> = graph
                .graph
                .edges_directed(input, Direction::Outgoing)
                .map(|edge| edge.target())
                .filter(|&node| {
                    (self.is_upload)(graph.graph.node_weight(node).expect("live node").as_ref())
                        && !graph.no_delete.contains(&node)
                        && !graph.to_retrieve.contains(&node)
                })
                .collect();
            for upload in uploads {
                move_outgoing_edge(upload, input, &mut graph.graph);
                graph.graph.remove_node(upload);
            }
        }
    }
}

/// Replaces the host values of any of `inputs` with a copy on the device.
#[cfg(feature = "cuda")]
pub fn upload_host_values(graph: &mut Graph, inputs: &[NodeIndex]) {
    let mut device = None;
    for input in inputs {
        let Some(tensor) = graph.tensors.get_mut(&(*input, 0)) else {
            continue;
        };
        let Some(values) = tensor.data.as_any().downcast_ref::<Vec<f32>>() else {
            continue;
        };
        let device = device.get_or_insert_with(|| {
            luminal_cudarc::driver::CudaDevice::new(0).expect("no CUDA device")
        });
        let buffer = device
            .htod_sync_copy(values)
            .expect("uploading an input to the GPU");
        *tensor = super::device_buffer::device_tensor(buffer);
    }
}

#[cfg(test)]
mod tests {
    use luminal::op::InputTensor;

    use super::*;

    /// An upload that adds 100 (so a test sees whether it ran), a kernel that adds 1, or (without
    /// inputs) a barrier that computes nothing.
    #[derive(Debug, Clone, PartialEq)]
    struct Add(f32);

    impl Operator for Add {
        fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
            if inputs.is_empty() {
                return Vec::new();
            }
            let values = crate::ops::input_values(&inputs[0].0, &inputs[0].1);
            vec![Tensor::new(
                values.iter().map(|v| v + self.0).collect::<Vec<f32>>(),
            )]
        }
    }

    fn is_upload(op: &dyn Operator) -> bool {
        op.as_any()
            .downcast_ref::<Add>()
            .is_some_and(|op| op.0 == 100.0)
    }

    #[test]
    fn readers_of_an_input_read_it_in_place_and_other_uploads_stay() {
        let mut graph = Graph::new();
        let shape = ShapeTracker::new(&[2.into()]);
        let resident = graph.tensor::<R1<2>>().id;
        let fed = graph.tensor::<R1<2>>().id;
        let node = |graph: &mut Graph, add, source| {
            graph.add_op(Add(add)).input(source, 0, shape).finish()
        };
        let resident_upload = node(&mut graph, 100.0, resident);
        let fed_upload = node(&mut graph, 100.0, fed);
        let first = node(&mut graph, 1.0, resident_upload);
        let second = node(&mut graph, 1.0, resident_upload);
        let third = node(&mut graph, 1.0, fed_upload);
        let barrier = graph.add_op(Add(0.0)).finish();
        graph.add_schedule_dependency(resident_upload, barrier);
        for output in [first, second, third] {
            graph.keep_tensors(output);
        }
        graph.compile(
            ReadInPlace {
                inputs: vec![resident],
                is_upload,
            },
            (),
        );
        assert!(graph.graph.node_weight(resident_upload).is_none());
        assert!(graph.graph.node_weight(fed_upload).is_some());
        let readers: Vec<NodeIndex> = graph
            .graph
            .edges_directed(resident, Direction::Outgoing)
            .map(|edge| edge.target())
            .collect();
        assert_eq!(readers.len(), 3, "both kernels and the barrier");
        graph.set_tensor(resident, 0, Tensor::new(vec![1.0, 2.0]));
        graph.set_tensor(fed, 0, Tensor::new(vec![1.0, 2.0]));
        graph.execute();
        let values = |node| crate::runtime::host_values(&graph, node).expect("kept");
        assert_eq!(values(first), [2.0, 3.0]);
        assert_eq!(values(second), [2.0, 3.0]);
        assert_eq!(values(third), [102.0, 103.0]);
    }
}
