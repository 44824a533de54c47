//! When a step's host transfers run. luminal orders a program by its data dependencies alone, so
//! the upload of a graph input lands just before the first node that reads it and the download of
//! a result just after the node that makes it: both in the middle of the step. On the GPU such a
//! copy waits for the work queued before it (a download always; an upload from pageable host
//! memory may synchronize with the stream), and the device then idles while the host queues the
//! rest of the step again. This pass puts every upload of a graph input before the step's first
//! kernel and every download of a result after its last one, through schedule dependencies on
//! two barrier nodes that compute nothing.
use std::{sync::Mutex, time::Instant};

use luminal::{
    op::{InputTensor, Operator},
    prelude::{petgraph::Direction, *},
};

use super::readers::readers;

/// A node that computes nothing: the point in a program's order that its schedule dependencies
/// mark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransferBarrier {
    /// Every upload of the step is queued; the step's kernels follow. It notes the time it ran
    /// (see [`last_uploads_queued`]).
    UploadsQueued,
    /// Every kernel of the step is queued; the downloads follow.
    KernelsQueued,
}

/// When a program last passed its [`TransferBarrier::UploadsQueued`].
static UPLOADS_QUEUED: Mutex<Option<Instant>> = Mutex::new(None);

/// When the last program run passed its uploads: the host's time from a step's execution to here
/// is the device's idle time before its first kernel, a fixed cost of every step.
pub fn last_uploads_queued() -> Option<Instant> {
    *UPLOADS_QUEUED.lock().expect("a plain time")
}

impl Operator for TransferBarrier {
    fn process(&mut self, _: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        if *self == TransferBarrier::UploadsQueued {
            *UPLOADS_QUEUED.lock().expect("a plain time") = Some(Instant::now());
        }
        Vec::new()
    }
}

/// Orders the uploads of graph inputs (ops `is_upload` holds for, reading only nodes with no
/// inputs) before every node that reads any of them, and the downloads of results (ops
/// `is_download` holds for, which nothing reads) after every other node. Gives the two barriers
/// it added, `None` where there was nothing to order.
pub fn order_host_transfers(
    graph: &mut Graph,
    is_upload: impl Fn(&dyn Operator) -> bool,
    is_download: impl Fn(&dyn Operator) -> bool,
) -> (Option<NodeIndex>, Option<NodeIndex>) {
    fn op_of(graph: &Graph, node: NodeIndex) -> &dyn Operator {
        graph.graph.node_weight(node).expect("live node").as_ref()
    }
    let has_inputs = |graph: &Graph, node| {
        graph
            .graph
            .edges_directed(node, Direction::Incoming)
            .next()
            .is_some()
    };
    let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
    let uploads: Vec<NodeIndex> = nodes
        .iter()
        .copied()
        .filter(|&node| is_upload(op_of(graph, node)))
        .filter(|&node| {
            graph
                .get_sources(node)
                .iter()
                .all(|&(source, _, _)| !has_inputs(graph, source))
        })
        .collect();
    let downloads: Vec<NodeIndex> = nodes
        .iter()
        .copied()
        .filter(|&node| is_download(op_of(graph, node)) && readers(graph, node).is_empty())
        .collect();

    let uploaded = (!uploads.is_empty()).then(|| {
        let barrier = graph.add_op(TransferBarrier::UploadsQueued).finish();
        let mut readers: Vec<NodeIndex> = uploads
            .iter()
            .flat_map(|&upload| readers(graph, upload).into_keys())
            .filter(|reader| !uploads.contains(reader))
            .collect();
        readers.sort();
        readers.dedup();
        for &upload in &uploads {
            graph.add_schedule_dependency(upload, barrier);
        }
        for reader in readers {
            graph.add_schedule_dependency(barrier, reader);
        }
        barrier
    });

    let queued = (!downloads.is_empty()).then(|| {
        // Every node leads to a last node (one whose results only downloads read, or nothing),
        // so following all the last nodes follows every node.
        let last: Vec<NodeIndex> = nodes
            .iter()
            .copied()
            .filter(|node| !downloads.contains(node) && has_inputs(graph, *node))
            .filter(|&node| {
                readers(graph, node)
                    .keys()
                    .all(|reader| downloads.contains(reader))
            })
            .collect();
        let barrier = graph.add_op(TransferBarrier::KernelsQueued).finish();
        for node in last {
            graph.add_schedule_dependency(node, barrier);
        }
        for &download in &downloads {
            graph.add_schedule_dependency(barrier, download);
        }
        barrier
    });
    (uploaded, queued)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An op that logs its name when it runs and adds its inputs (or passes its one input on).
    #[derive(Debug, Clone)]
    struct Logged {
        name: &'static str,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl PartialEq for Logged {
        fn eq(&self, other: &Self) -> bool {
            self.name == other.name
        }
    }

    impl Operator for Logged {
        fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
            self.log.lock().unwrap().push(self.name);
            let mut sum = vec![0.0f32; 4];
            for (input, _) in &inputs {
                let values = input
                    .borrowed()
                    .data
                    .as_any()
                    .downcast_ref::<Vec<f32>>()
                    .expect("host values");
                for (total, value) in sum.iter_mut().zip(values) {
                    *total += value;
                }
            }
            vec![Tensor::new(sum)]
        }
    }

    struct Program {
        graph: Graph,
        log: Arc<Mutex<Vec<&'static str>>>,
        inputs: Vec<NodeIndex>,
        outputs: Vec<NodeIndex>,
    }

    /// Two inputs, each uploaded; a chain of three kernels reading the first upload at its start
    /// and the second at its end; a download of the first kernel's result and one of the last's.
    fn program() -> Program {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut graph = Graph::new();
        let logged = |name| Logged {
            name,
            log: log.clone(),
        };
        let shape = ShapeTracker::new(&[4.into()]);
        // The creation order makes luminal's order (a depth-first one) interleave.
        let late_input = graph.tensor::<R1<4>>().id;
        let op = |graph: &mut Graph, name, sources: &[NodeIndex]| {
            let mut new = graph.add_op(logged(name));
            for &source in sources {
                new = new.input(source, 0, shape);
            }
            new.finish()
        };
        let upload_late = op(&mut graph, "upload late", &[late_input]);
        let early_input = graph.tensor::<R1<4>>().id;
        let upload_early = op(&mut graph, "upload early", &[early_input]);
        let first = op(&mut graph, "kernel 1", &[upload_early]);
        let second = op(&mut graph, "kernel 2", &[first]);
        let download_first = op(&mut graph, "download 1", &[first]);
        let third = op(&mut graph, "kernel 3", &[second, upload_late]);
        let download_third = op(&mut graph, "download 3", &[third]);
        for output in [download_first, download_third] {
            graph.no_delete.insert(output);
            graph.to_retrieve.insert(output);
        }
        Program {
            graph,
            log,
            inputs: vec![early_input, late_input],
            outputs: vec![download_first, download_third],
        }
    }

    fn is_named(prefix: &'static str) -> impl Fn(&dyn Operator) -> bool {
        move |op| {
            op.as_any()
                .downcast_ref::<Logged>()
                .is_some_and(|op| op.name.starts_with(prefix))
        }
    }

    /// Runs the program on inputs 1 and 10; gives the order its ops ran in and its outputs.
    fn run(program: &mut Program) -> (Vec<&'static str>, Vec<Vec<f32>>) {
        program.log.lock().unwrap().clear();
        for (&input, value) in program.inputs.iter().zip([1.0f32, 10.0]) {
            program
                .graph
                .set_tensor(input, 0, Tensor::new(vec![value; 4]));
        }
        program.graph.execute();
        let outputs = program
            .outputs
            .iter()
            .map(|&node| {
                program.graph.tensors[&(node, 0)]
                    .data
                    .as_any()
                    .downcast_ref::<Vec<f32>>()
                    .unwrap()
                    .clone()
            })
            .collect();
        (program.log.lock().unwrap().clone(), outputs)
    }

    fn position(order: &[&str], name: &str) -> usize {
        order.iter().position(|&ran| ran == name).unwrap()
    }

    #[test]
    fn uploads_run_before_every_kernel_and_downloads_after_every_kernel() {
        let mut unordered = program();
        let (before, results_before) = run(&mut unordered);
        // luminal alone runs a transfer next to the node it serves, mid-program.
        let mid_program = position(&before, "upload late") > position(&before, "kernel 1")
            && position(&before, "download 1") < position(&before, "kernel 3");
        assert!(mid_program, "the test program must interleave: {before:?}");

        let mut ordered = program();
        let (uploaded, queued) =
            order_host_transfers(&mut ordered.graph, is_named("upload"), is_named("download"));
        assert!(uploaded.is_some() && queued.is_some());
        let (after, results_after) = run(&mut ordered);
        let last_upload = position(&after, "upload early").max(position(&after, "upload late"));
        let first_download = position(&after, "download 1").min(position(&after, "download 3"));
        for kernel in ["kernel 1", "kernel 2", "kernel 3"] {
            assert!(last_upload < position(&after, kernel), "{after:?}");
            assert!(position(&after, kernel) < first_download, "{after:?}");
        }
        assert_eq!(results_after, results_before);
        assert_eq!(results_after, vec![vec![1.0; 4], vec![11.0; 4]]);
        // A second run gives the same: the barriers hold no value between runs.
        assert_eq!(run(&mut ordered).1, results_before);
    }

    #[test]
    fn a_program_without_transfers_is_left_alone() {
        let mut program = program();
        let nodes = program.graph.graph.node_count();
        let barriers = order_host_transfers(&mut program.graph, |_| false, |_| false);
        assert_eq!(barriers, (None, None));
        assert_eq!(program.graph.graph.node_count(), nodes);
    }

    #[test]
    fn an_upload_of_a_computed_value_keeps_its_place() {
        // Only uploads of graph inputs move: one of a kernel's result must wait for the kernel.
        let mut program = program();
        let (uploaded, _) =
            order_host_transfers(&mut program.graph, is_named("kernel 2"), |_| false);
        assert_eq!(uploaded, None);
    }
}
