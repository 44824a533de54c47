//! A step's uploads as a few nodes instead of one per graph input. luminal_cuda gives every graph
//! input its own upload node, about 630 a BERT-base training step (weights, optimizer state,
//! batch). Almost all of them hand over a buffer already on the device, but each still costs the
//! interpreter a node's round (microseconds on the host), and they all run before the step's
//! first kernel, while the device has nothing to do. One node per 256 inputs (luminal numbers a
//! node's inputs and outputs with a byte) does the same work in a few rounds.
use luminal::{
    op::Operator,
    prelude::{
        petgraph::{visit::EdgeRef, Direction},
        *,
    },
};

use super::readers::is_output;

/// The most inputs one group takes: luminal numbers them (and the outputs) with a `u8`.
pub const GROUP_SIZE: usize = u8::MAX as usize + 1;

/// Replaces the upload nodes (`is_upload`) of graph inputs by groups made by `group`: an op whose
/// output `i` is the upload of its input `i`. Uploads that are themselves program outputs stay.
/// Gives the groups.
pub fn group_uploads(
    graph: &mut Graph,
    is_upload: impl Fn(&dyn Operator) -> bool,
    group: impl Fn() -> Box<dyn Operator>,
) -> Vec<NodeIndex> {
    let is_graph_input = |graph: &Graph, node: NodeIndex| {
        graph
            .graph
            .edges_directed(node, Direction::Incoming)
            .next()
            .is_none()
    };
    let uploads: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| is_upload(graph.graph.node_weight(node).expect("live node").as_ref()))
        .filter(|&node| !is_output(graph, node))
        .filter(|&node| {
            let sources = graph.get_sources(node);
            sources.len() == 1 && is_graph_input(graph, sources[0].0)
        })
        .collect();
    uploads
        .chunks(GROUP_SIZE)
        .map(|chunk| {
            let grouped = graph.graph.add_node(group());
            for (place, &upload) in chunk.iter().enumerate() {
                let place = place as u8;
                let (source, from, view) = graph.get_sources(upload)[0];
                graph.graph.add_edge(
                    source,
                    grouped,
                    Dependency::Data {
                        input_order: place,
                        output_order: from,
                        shape: view,
                    },
                );
                let readers: Vec<(NodeIndex, Dependency)> = graph
                    .graph
                    .edges_directed(upload, Direction::Outgoing)
                    .map(|edge| (edge.target(), *edge.weight()))
                    .collect();
                for (reader, dependency) in readers {
                    let moved = match dependency {
                        Dependency::Data {
                            input_order, shape, ..
                        } => Dependency::Data {
                            input_order,
                            output_order: place,
                            shape,
                        },
                        Dependency::Schedule => Dependency::Schedule,
                    };
                    graph.graph.add_edge(grouped, reader, moved);
                }
                graph.graph.remove_node(upload);
            }
            grouped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use luminal::op::InputTensor;

    use super::*;

    /// A stand-in upload: hands its one input on.
    #[derive(Debug, Clone, PartialEq)]
    struct Upload;

    impl Operator for Upload {
        fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
            vec![inputs.pop().expect("one input").0.cloned()]
        }
    }

    /// A stand-in group: hands each input on as the output of the same place.
    #[derive(Debug, Clone, PartialEq)]
    struct Group;

    impl Operator for Group {
        fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
            inputs
                .into_iter()
                .map(|(input, _)| input.cloned())
                .collect()
        }
    }

    fn is_upload(op: &dyn Operator) -> bool {
        op.as_any().is::<Upload>()
    }

    /// `count` inputs `i` (each a length-2 vector of `i`), each uploaded and read by a product
    /// with the next one's upload; the sum of the products, retrieved.
    fn program(count: usize) -> (Graph, NodeIndex) {
        let mut graph = Graph::new();
        let uploaded: Vec<GraphTensor<R1<2>>> = (0..count)
            .map(|i| {
                let input = graph.tensor::<R1<2>>().set(vec![i as f32; 2]);
                let upload = graph
                    .add_op(Upload)
                    .input(input.id, 0, input.shape)
                    .finish();
                GraphTensor::from_id(upload, input.shape, &mut graph)
            })
            .collect();
        let mut total = uploaded[0] * uploaded[1];
        for pair in uploaded.windows(2).skip(1) {
            total += pair[0] * pair[1];
        }
        let total = total.retrieve();
        (graph, total.id)
    }

    fn result(mut graph: Graph, output: NodeIndex) -> Vec<f32> {
        graph.execute();
        graph.tensors[&(output, 0)]
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .expect("host values")
            .clone()
    }

    #[test]
    fn grouped_uploads_give_the_same_program() {
        // More inputs than a group takes, so that one group is full and one is not.
        let count = GROUP_SIZE + 44;
        let (plain, output) = program(count);
        let expected: f32 = (1..count).map(|i| (i * (i - 1)) as f32).sum();
        assert_eq!(result(plain, output), vec![expected; 2]);

        let (mut grouped, output) = program(count);
        let nodes = grouped.graph.node_count();
        let groups = group_uploads(&mut grouped, is_upload, || Box::new(Group));
        assert_eq!(groups.len(), 2);
        assert_eq!(grouped.graph.node_count(), nodes - count + 2);
        let uploads_left = grouped
            .graph
            .node_indices()
            .filter(|&node| is_upload(grouped.graph.node_weight(node).unwrap().as_ref()))
            .count();
        assert_eq!(uploads_left, 0);
        assert_eq!(result(grouped, output), vec![expected; 2]);
    }

    #[test]
    fn an_upload_that_is_an_output_or_reads_a_computed_value_stays() {
        let (mut graph, _) = program(3);
        let uploads: Vec<NodeIndex> = graph
            .graph
            .node_indices()
            .filter(|&node| is_upload(graph.graph.node_weight(node).unwrap().as_ref()))
            .collect();
        graph.to_retrieve.insert(uploads[0]);
        let computed = graph
            .add_op(Upload)
            .input(uploads[1], 0, ShapeTracker::new(&[2.into()]));
        let of_computed = computed.finish();
        let groups = group_uploads(&mut graph, is_upload, || Box::new(Group));
        assert_eq!(groups.len(), 1);
        assert_eq!(graph.get_sources(groups[0]).len(), 2);
        assert!(graph.graph.contains_node(uploads[0]));
        assert!(graph.graph.contains_node(of_computed));
    }
}
