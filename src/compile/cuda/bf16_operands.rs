//! `--matmul bf16`: GEMM operands are rounded to bf16 in memory before cuBLAS reads them, and the
//! product is accumulated and written in float32, as PyTorch's bf16 autocast does for a matmul.
//! cuBLAS's own bf16 mode for float32 operands (`CUBLAS_COMPUTE_32F_FAST_16BF`) ran no faster
//! than TF32 on an H200 (docs/perf.md, run 11): the tensor cores reach their bf16 rate only from
//! bf16 in memory. The weights (the master copies), activations and optimizer state stay float32;
//! only the copies GEMMs read are bf16.
//!
//! Each float32 result that GEMMs read is rounded once for all of them ([`share_rounded_operands`]):
//! a layer's input feeds the query, key and value products forward and their weight gradients
//! backward, six reads of one rounded copy. The fused elementwise, GELU, attention and
//! cross-entropy-gradient kernels write the bf16 copy as they compute the result, and skip the
//! float32 result where only GEMMs read it; other results get a [`CudaRoundToBf16`] node. Either way, only the half-size copy waits for the
//! backward pass where every reader is a GEMM.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use luminal::{
    op::{InputTensor, Operator},
    prelude::{
        petgraph::{stable_graph::EdgeIndex, visit::EdgeRef, Direction},
        *,
    },
};
use luminal_cudarc::driver::{CudaDevice, CudaSlice, DevicePtr, DeviceSlice, LaunchAsync};

use super::{
    attention_probabilities::CudaAttentionProbabilities,
    bf16_products::{bf16_operand_inputs, writes_bf16},
    bf16_rounding::{output_buffers, rounding_source, Store, ROUNDED_PER_THREAD},
    device_buffer::{input_slice, raw_input, raw_tensor},
    fused_elementwise::CudaFusedElementwise,
    gelu::CudaGeluKernel,
    kernel::{int, per_element, Kernel},
    logit_rows::{CudaLogitRows, LogitRowsKernel},
    readers::is_output,
    reduce::CudaReduce,
};

/// A bf16 device buffer (the values' bits) as a tensor.
pub fn bf16_tensor(buffer: CudaSlice<u16>) -> Tensor {
    raw_tensor(buffer)
}

/// The bf16 buffer of an op input; panics where the input is not one.
pub fn bf16_input<'a>(input: &'a InputTensor<'a>, what: &str) -> &'a CudaSlice<u16> {
    raw_input(input, what, "a bf16 buffer")
}

/// The device address of an op input's buffer, bf16 or float32 as the kernel reads it.
pub fn input_address(input: &InputTensor<'_>, bf16: bool, what: &str) -> u64 {
    if bf16 {
        *bf16_input(input, what).device_ptr()
    } else {
        *input_slice(input, what).device_ptr()
    }
}

/// The device addresses of a kernel's inputs in order, those numbered in `bf16_inputs` bf16.
pub fn input_addresses(
    inputs: &[(InputTensor, ShapeTracker)],
    bf16_inputs: &[u8],
    what: &str,
) -> Vec<u64> {
    inputs
        .iter()
        .enumerate()
        .map(|(order, (input, _))| {
            let bf16 = u8::try_from(order).is_ok_and(|order| bf16_inputs.contains(&order));
            input_address(input, bf16, what)
        })
        .collect()
}

/// A bf16 copy of the whole of its input's buffer, so that a GEMM's view of the input (offsets
/// and strides in elements) reads the copy as it would read the buffer.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaRoundToBf16 {
    kernel: Kernel,
}

impl CudaRoundToBf16 {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            kernel: Kernel::compile(device, &rounding_source()),
        }
    }
}

impl Operator for CudaRoundToBf16 {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let buffer = input_slice(&inputs[0].0, "bf16 rounding");
        let len = buffer.len();
        // Every element is written.
        let mut rounded = unsafe { self.kernel.device.alloc::<u16>(len) }.expect("GPU allocation");
        let args = (&mut rounded, buffer, int(len));
        let threads = len.div_ceil(ROUNDED_PER_THREAD);
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(threads), args)
        }
        .expect("bf16 rounding launch");
        vec![bf16_tensor(rounded)]
    }
}

/// Where a GEMM reads a rounded operand from: a node and its output.
type Place = (NodeIndex, u8);

/// Gives every GEMM that reads bf16 operands its operands in bf16, each float32 result rounded
/// once for all the GEMMs that read it. A kernel of dropbert's that can writes the bf16 copy
/// itself, and no float32 result at all where only GEMMs read it; any other result gets one
/// [`CudaRoundToBf16`] node. Reductions of a rounded result read the copy too. Products cuBLAS
/// writes in bf16 (`bf16_products`) are read as they are. Runs after the CUDA kernels are in
/// place.
pub fn share_rounded_operands(graph: &mut Graph, device: &Arc<CudaDevice>) {
    // Each rounded (node, output), with the GEMM edges that read it (and, added below, the
    // reductions).
    let mut readers: BTreeMap<Place, Vec<(EdgeIndex, NodeIndex, u8, ShapeTracker)>> =
        BTreeMap::new();
    for reader in graph.graph.node_indices() {
        let op = graph.graph.node_weight(reader).expect("live node");
        let Some(operands) = bf16_operand_inputs(op.as_ref()) else {
            continue;
        };
        for edge in graph.graph.edges_directed(reader, Direction::Incoming) {
            let Some((input_order, output_order, view)) = edge.weight().as_data() else {
                continue;
            };
            let source = graph.graph.node_weight(edge.source()).expect("live node");
            if !operands.contains(&input_order) || writes_bf16(source.as_ref(), output_order) {
                continue;
            }
            readers
                .entry((edge.source(), output_order))
                .or_default()
                .push((edge.id(), reader, input_order, view));
        }
    }
    // A reduction of a result that GEMMs read in bf16 (a bias gradient's sum over tokens of the
    // gradient a dense layer's GEMMs read) reads the same copy, as PyTorch's autocast sums a
    // bf16 gradient, at half the bytes; the float32 result is then kept only for other readers.
    let mut reductions = Vec::new();
    let places: Vec<Place> = readers.keys().copied().collect();
    for (node, output) in places {
        for edge in graph.graph.edges_directed(node, Direction::Outgoing) {
            let Some((input_order, from, view)) = edge.weight().as_data() else {
                continue;
            };
            let reduction = graph
                .graph
                .node_weight(edge.target())
                .expect("live node")
                .as_any()
                .downcast_ref::<CudaReduce>();
            if from == output && reduction.is_some_and(|reduction| !reduction.reads_bf16()) {
                readers.entry((node, output)).or_default().push((
                    edge.id(),
                    edge.target(),
                    input_order,
                    view,
                ));
                reductions.push(edge.target());
            }
        }
    }
    let bf16_edges: HashSet<EdgeIndex> =
        readers.values().flatten().map(|&(edge, ..)| edge).collect();
    let mut rounded_results: BTreeMap<NodeIndex, Vec<u8>> = BTreeMap::new();
    for &(node, output) in readers.keys() {
        rounded_results.entry(node).or_default().push(output);
    }
    let mut copies: HashMap<Place, Place> = HashMap::new();
    for (node, outputs) in rounded_results {
        let stores: Vec<(u8, Store)> = outputs
            .iter()
            .map(|&output| {
                let read_as_float = is_output(graph, node)
                    || graph
                        .graph
                        .edges_directed(node, Direction::Outgoing)
                        .any(|edge| {
                            edge.weight()
                                .as_data()
                                .is_some_and(|(_, from, _)| from == output)
                                && !bf16_edges.contains(&edge.id())
                        });
                (
                    output,
                    if read_as_float {
                        Store::Both
                    } else {
                        Store::Bf16
                    },
                )
            })
            .collect();
        match store_copies(graph, node, &stores) {
            Some(places) => copies.extend(places),
            None => {
                for (output, _) in stores {
                    let view = readers[&(node, output)][0].3;
                    let copy = graph
                        .add_op(CudaRoundToBf16::new(device))
                        .input(node, output, view)
                        .finish();
                    copies.insert((node, output), (copy, 0));
                }
            }
        }
    }
    for (place, edges) in readers {
        let (copy, copy_output) = copies[&place];
        for (edge, reader, input_order, view) in edges {
            graph.graph.remove_edge(edge);
            graph.graph.add_edge(
                copy,
                reader,
                Dependency::Data {
                    input_order,
                    output_order: copy_output,
                    shape: view,
                },
            );
        }
    }
    for reduction in reductions {
        let weight = graph.graph.node_weight_mut(reduction).expect("live node");
        let op = weight
            .as_any()
            .downcast_ref::<CudaReduce>()
            .expect("a reduction");
        *weight = Box::new(op.reading_bf16());
    }
}

/// Makes `node`'s kernel store its results as `stores` say, where it can (a fused elementwise,
/// GELU, attention-probabilities or cross-entropy-gradient kernel): where each result's bf16 copy
/// will be, as [`output_buffers`] orders them.
fn store_copies(
    graph: &mut Graph,
    node: NodeIndex,
    stores: &[(u8, Store)],
) -> Option<Vec<(Place, Place)>> {
    let op = graph.graph.node_weight(node).expect("live node").as_any();
    let every_result = |results: usize| {
        let mut all = vec![Store::Float; results];
        for &(output, store) in stores {
            all[output as usize] = store;
        }
        all
    };
    let (kernel, all): (Box<dyn Operator>, Vec<Store>) =
        if let Some(fused) = op.downcast_ref::<CudaFusedElementwise>() {
            let all = every_result(fused.results());
            (Box::new(fused.storing(all.clone())), all)
        } else if let Some(gelu) = op.downcast_ref::<CudaGeluKernel>() {
            let all = every_result(1);
            (Box::new(gelu.storing(all[0])), all)
        } else if let Some(probabilities) = op.downcast_ref::<CudaAttentionProbabilities>() {
            let all = every_result(1);
            (Box::new(probabilities.storing(all[0])), all)
        } else if let Some(gradient) = op
            .downcast_ref::<CudaLogitRows>()
            .filter(|kernel| kernel.computes() == LogitRowsKernel::Gradient)
        {
            let all = every_result(1);
            (Box::new(gradient.storing(all[0])), all)
        } else {
            return None;
        };
    *graph.graph.node_weight_mut(node).expect("live node") = kernel;
    let buffers = output_buffers(&all);
    Some(
        stores
            .iter()
            .map(|&(output, _)| {
                let place = buffers
                    .iter()
                    .position(|&(result, bf16)| result == output as usize && bf16)
                    .expect("every rounded result has a bf16 buffer");
                let place = u8::try_from(place).expect("luminal addresses outputs with a u8");
                ((node, output), (node, place))
            })
            .collect(),
    )
}
