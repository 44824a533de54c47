//! The CUDA pipeline after luminal's generic passes: luminal_cuda's passes for luminal's
//! primitives, with dropbert's ops made ready for them before and turned into CUDA kernels after.
use std::sync::Arc;

use luminal::op::Operator;
use luminal::prelude::{
    petgraph::{visit::EdgeRef, Direction},
    *,
};
use luminal_cudarc::{cublas::CudaBlas, driver::CudaDevice};

use super::{
    adamw_step::CudaAdamWStep,
    attention_fusion::fuse_attention,
    attention_probabilities::CudaAttentionProbabilities,
    bf16_operands::share_rounded_operands,
    bf16_products::{write_fused_attention_in_bf16, write_products_in_bf16},
    contraction::CudaContraction,
    copy_ops::{is_download, is_upload},
    dropout_mask::CudaDropoutMask,
    fused_attention::CudaFusedAttentionOps,
    fused_elementwise::CudaFusedElementwise,
    gates::{CudaGateChoose, CudaGateMask},
    gelu::CudaGeluKernel,
    host_transfers::order_host_transfers,
    importance::CudaImportanceUpdate,
    kept_tokens::CudaSelectKeptTokens,
    logit_rows::CudaLogitRows,
    normalize::{cuda_normalize, cuda_normalize_gradient},
    packed_dropout_masks::pack_dropout_masks,
    pinned_downloads::pin_downloads,
    pinned_uploads::pin_uploads,
    readers::is_output,
    reduce::reduce_on_warps,
    rows::{CudaGatherRows, CudaScatterAddRows, CudaWriteRows},
    softmax::{cuda_softmax, cuda_softmax_gradient},
    sum_of_squares::CudaSumOfSquares,
    view_adjoint::CudaViewAdjoint,
};
use crate::compile::cpu::{
    Contraction, ContractionCompiler, ElementwiseFusionCompiler, FusedElementwise,
    OperandSumsCompiler,
};
use crate::ops::{
    AdamWStep, AttentionProbabilities, AttentionProbabilitiesGradient, CrossEntropy,
    CrossEntropyGradient, DropoutMask, GateChoose, GateMask, GatherRows, Gelu, GeluGradient,
    ImportanceUpdate, LabelIsArgmax, Normalize, NormalizeGradient, ReplaceRows, ScatterAddRows,
    SelectKeptTokens, Softmax, SoftmaxGradient, SumOfSquares, ViewAdjoint, ZeroRows,
};
use crate::runtime::MatmulPrecision;

#[derive(Debug, Default)]
pub struct DropbertCudaCompiler;

impl Compiler for DropbertCudaCompiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, mut remap: T) {
        let device = CudaDevice::new(0).expect("no CUDA device");
        super::memory_pool::keep_freed_memory(&device);
        // Before luminal_cuda's passes: they would turn the contractions they cannot match into a
        // broadcast product and a sum.
        ContractionCompiler.compile(graph, &mut remap);
        OperandSumsCompiler.compile(graph, &mut remap);
        // Chains of elementwise primitives become one kernel each, as on the CPU; luminal_cuda's
        // passes leave the fused ops alone, as they do all of dropbert's.
        ElementwiseFusionCompiler.compile(graph, &mut remap);
        read_inputs_contiguously(graph);
        let host_inputs = host_inputs(graph);
        reduce_on_warps(graph, &device);
        // Not luminal_cuda's gather pass: like luminal's CPU one, it takes arange-compare-
        // multiply-sum chains for embedding lookups; dropbert gathers with its own op.
        let (primitives, subtraction, equal, arange, _gather, matmul, copies) =
            luminal_cuda::CudaCompiler::<f32>::default();
        primitives.compile(graph, &mut remap);
        subtraction.compile(graph, &mut remap);
        equal.compile(graph, &mut remap);
        arange.compile(graph, &mut remap);
        matmul.compile(graph, &mut remap);
        copies.compile(graph, &mut remap);
        read_on_host(graph, &host_inputs);
        if MatmulPrecision::selected() == MatmulPrecision::Bf16 && fused_attention_wanted() {
            fuse_attention(graph, &CudaFusedAttentionOps(&device));
        }
        swap_in_kernels(graph, &device);
        pin_uploads(graph, &device);
        pin_downloads(graph, &device);
        pack_dropout_masks(graph);
        write_products_in_bf16(graph);
        write_fused_attention_in_bf16(graph);
        share_rounded_operands(graph, &device);
        if transfers_at_the_edges_wanted() {
            order_host_transfers(graph, is_upload, is_download);
        }
    }
}

/// Uploads run before a step's kernels and downloads after them unless
/// `DROPBERT_TRANSFERS_AT_EDGES=0`, which leaves them where luminal orders them (for comparing
/// the two on one build).
fn transfers_at_the_edges_wanted() -> bool {
    std::env::var("DROPBERT_TRANSFERS_AT_EDGES").map_or(true, |value| value != "0")
}

/// Fused attention is on unless `DROPBERT_FUSED_ATTENTION=0`, which keeps attention's products
/// and probability kernels apart (for comparing the two on one build).
fn fused_attention_wanted() -> bool {
    std::env::var("DROPBERT_FUSED_ATTENTION").map_or(true, |value| value != "0")
}

/// Whether `node` runs one of dropbert's ops.
fn is_dropbert_op(graph: &Graph, node: NodeIndex) -> bool {
    let op = graph.graph.node_weight(node).expect("live node").as_any();
    op.is::<GatherRows>()
        || op.is::<ScatterAddRows>()
        || op.is::<ReplaceRows>()
        || op.is::<ZeroRows>()
        || op.is::<ViewAdjoint>()
        || op.is::<GateChoose>()
        || op.is::<GateMask>()
        || op.is::<SelectKeptTokens>()
        || op.is::<ImportanceUpdate>()
        || op.is::<Gelu>()
        || op.is::<GeluGradient>()
        || op.is::<Softmax>()
        || op.is::<Normalize>()
        || op.is::<NormalizeGradient>()
        || op.is::<SoftmaxGradient>()
        || op.is::<AttentionProbabilities>()
        || op.is::<AttentionProbabilitiesGradient>()
        || op.is::<DropoutMask>()
        || op.is::<SumOfSquares>()
        || op.is::<AdamWStep>()
        || op.is::<CrossEntropy>()
        || op.is::<CrossEntropyGradient>()
        || op.is::<LabelIsArgmax>()
}

/// dropbert's kernels read plain buffers: an input read through any other view (permuted,
/// broadcast, sliced, padded) gets a luminal `Contiguous` op first, which luminal_cuda compiles.
fn read_inputs_contiguously(graph: &mut Graph) {
    let nodes: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| is_dropbert_op(graph, node))
        .collect();
    for node in nodes {
        let viewed: Vec<_> = graph
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter_map(|edge| {
                let (input_order, output_order, view) = edge.weight().as_data()?;
                let plain = view.is_contiguous() && !view.is_sliced() && !view.is_padded();
                (!plain).then_some((edge.id(), edge.source(), input_order, output_order, view))
            })
            .collect();
        for (edge, source, input_order, output_order, view) in viewed {
            let copy = graph
                .add_op(luminal::op::Contiguous)
                .input(source, output_order, view)
                .finish();
            graph.graph.remove_edge(edge);
            graph.graph.add_edge(
                copy,
                node,
                Dependency::Data {
                    input_order,
                    output_order: 0,
                    shape: view.contiguous(),
                },
            );
        }
    }
}

/// The ops that read a small graph input on the host (a gate op's gate, a dropout mask's random
/// key), each with the input's order and node.
fn host_inputs(graph: &Graph) -> Vec<(NodeIndex, u8, NodeIndex)> {
    graph
        .graph
        .node_indices()
        .filter_map(|node| {
            let order =
                host_input_order(graph.graph.node_weight(node).expect("live node").as_ref())?;
            Some((node, order, graph.get_sources(node)[order as usize].0))
        })
        .collect()
}

/// Which input of `op` is read on the host, if any.
fn host_input_order(op: &dyn Operator) -> Option<u8> {
    let op = op.as_any();
    if op.is::<GateChoose>() || op.is::<GateMask>() {
        Some(0)
    } else if op.is::<DropoutMask>() {
        Some(DropoutMask::KEY)
    } else if let Some(op) = op.downcast_ref::<AttentionProbabilities>() {
        op.key_input()
    } else if let Some(op) = op.downcast_ref::<AttentionProbabilitiesGradient>() {
        op.key_input()
    } else {
        None
    }
}

/// luminal_cuda copies every graph input to the device; a gate is decided on the host, and a
/// dropout mask's key goes to its kernel as arguments, so each such op reads its input from the
/// host input again. (The layer-drop schedule also finds the gate of each gate op this way.)
fn read_on_host(graph: &mut Graph, host_inputs: &[(NodeIndex, u8, NodeIndex)]) {
    for &(op, order, input) in host_inputs {
        let edge = graph
            .graph
            .edges_directed(op, Direction::Incoming)
            .find(|edge| {
                edge.weight()
                    .as_data()
                    .is_some_and(|(input_order, _, _)| input_order == order)
            })
            .expect("the op reads its host input");
        if edge.source() == input {
            continue;
        }
        let (copy, id, weight) = (edge.source(), edge.id(), *edge.weight());
        graph.graph.remove_edge(id);
        graph.graph.add_edge(input, op, weight);
        let unused = graph
            .graph
            .edges_directed(copy, Direction::Outgoing)
            .next()
            .is_none();
        if unused && !is_output(graph, copy) {
            graph.graph.remove_node(copy);
        }
    }
}

/// Replaces each dropbert op by its CUDA kernel.
fn swap_in_kernels(graph: &mut Graph, device: &Arc<CudaDevice>) {
    let blas = Arc::new(CudaBlas::new(device.clone()).expect("creating a cuBLAS handle"));
    let precision = MatmulPrecision::selected();
    let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
    for node in nodes {
        let op = graph.graph.node_weight(node).expect("live node").as_any();
        let kernel: Box<dyn Operator> = if let Some(op) = op.downcast_ref::<Contraction>() {
            Box::new(CudaContraction::new(op, precision, &blas, device))
        } else if let Some(op) = op.downcast_ref::<FusedElementwise>() {
            let inputs = graph.get_sources(node).len();
            Box::new(CudaFusedElementwise::new(op, inputs, device))
        } else if let Some(op) = op.downcast_ref::<GatherRows>() {
            Box::new(CudaGatherRows::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<ScatterAddRows>() {
            Box::new(CudaScatterAddRows::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<ReplaceRows>() {
            Box::new(CudaWriteRows::replace(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<ZeroRows>() {
            Box::new(CudaWriteRows::zero(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<ViewAdjoint>() {
            Box::new(CudaViewAdjoint::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<GateChoose>() {
            Box::new(CudaGateChoose::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<GateMask>() {
            Box::new(CudaGateMask::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<SelectKeptTokens>() {
            Box::new(CudaSelectKeptTokens::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<ImportanceUpdate>() {
            Box::new(CudaImportanceUpdate::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<Gelu>() {
            Box::new(CudaGeluKernel::forward(op, device))
        } else if let Some(op) = op.downcast_ref::<GeluGradient>() {
            Box::new(CudaGeluKernel::gradient(op, device))
        } else if let Some(op) = op.downcast_ref::<Softmax>() {
            Box::new(cuda_softmax(op, device))
        } else if let Some(op) = op.downcast_ref::<SoftmaxGradient>() {
            Box::new(cuda_softmax_gradient(op, device))
        } else if let Some(op) = op.downcast_ref::<AttentionProbabilities>() {
            Box::new(CudaAttentionProbabilities::forward(op, device))
        } else if let Some(op) = op.downcast_ref::<AttentionProbabilitiesGradient>() {
            Box::new(CudaAttentionProbabilities::gradient(op, device))
        } else if let Some(op) = op.downcast_ref::<Normalize>() {
            Box::new(cuda_normalize(op, device))
        } else if let Some(op) = op.downcast_ref::<NormalizeGradient>() {
            Box::new(cuda_normalize_gradient(op, device))
        } else if let Some(op) = op.downcast_ref::<DropoutMask>() {
            Box::new(CudaDropoutMask::new(op.clone(), device))
        } else if let Some(op) = op.downcast_ref::<SumOfSquares>() {
            Box::new(CudaSumOfSquares::new(op, device))
        } else if let Some(op) = op.downcast_ref::<AdamWStep>() {
            Box::new(CudaAdamWStep::new(op, device))
        } else if let Some(op) = op.downcast_ref::<CrossEntropy>() {
            Box::new(CudaLogitRows::loss(op, device))
        } else if let Some(op) = op.downcast_ref::<CrossEntropyGradient>() {
            Box::new(CudaLogitRows::gradient(op, device))
        } else if let Some(op) = op.downcast_ref::<LabelIsArgmax>() {
            Box::new(CudaLogitRows::argmax(op, device))
        } else {
            continue;
        };
        *graph.graph.node_weight_mut(node).expect("live node") = kernel;
    }
}
