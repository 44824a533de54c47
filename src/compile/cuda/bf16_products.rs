//! `--matmul bf16`: a product that only bf16 GEMMs and dropbert's kernels read, each through an
//! input it can take in bf16 (attention's scores and the probabilities' gradient; GELU's input and
//! its gradient; any input of a fused elementwise kernel, such as the bias, dropout and residual
//! pass after a dense layer; a reduction, such as a bias gradient's sum over tokens, which adds the
//! widened terms in float32; the masked-LM loss, its gradient and the accuracy, which read the
//! decoder's product and add its bias in float32), is written in bf16 by cuBLAS, as PyTorch's
//! autocast writes a matmul's output. The product then costs half the bytes to write, to keep for
//! the backward pass, and to read each time, and a product only GEMMs read needs no rounding pass.
//! Runs once the CUDA kernels are in place, before `bf16_operands::share_rounded_operands`, which
//! leaves these products alone.
use std::collections::BTreeMap;

use luminal::{op::Operator, prelude::*};

use super::{
    attention_probabilities::CudaAttentionProbabilities,
    contraction::CudaContraction,
    fused_attention::{CudaFusedAttention, CudaFusedAttentionGradient},
    fused_elementwise::CudaFusedElementwise,
    gelu::CudaGeluKernel,
    logit_rows::CudaLogitRows,
    readers::{is_output, readers, readers_of_output},
    reduce::CudaReduce,
};

/// Makes every product whose readers all take it in bf16 a bf16 product, and those readers read
/// it so.
pub fn write_products_in_bf16(graph: &mut Graph) {
    let products: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| {
            let op = graph.graph.node_weight(node).expect("live node").as_any();
            op.downcast_ref::<CudaContraction>()
                .is_some_and(CudaContraction::can_write_bf16)
                && !is_output(graph, node)
        })
        .collect();
    for product in products {
        let Some(readers) = readers_in_bf16(graph, &readers(graph, product)) else {
            continue;
        };
        let contraction = graph
            .graph
            .node_weight(product)
            .expect("live node")
            .as_any()
            .downcast_ref::<CudaContraction>()
            .expect("a contraction")
            .writing_bf16();
        let contraction: Box<dyn Operator> = Box::new(contraction);
        replace_ops(graph, readers.into_iter().chain([(product, contraction)]));
    }
}

/// Each of `inputs_read`'s readers reading those inputs in bf16, if there are readers and every
/// one can.
fn readers_in_bf16(
    graph: &Graph,
    inputs_read: &BTreeMap<NodeIndex, Vec<u8>>,
) -> Option<Vec<(NodeIndex, Box<dyn Operator>)>> {
    if inputs_read.is_empty() {
        return None;
    }
    inputs_read
        .iter()
        .map(|(&reader, inputs)| {
            let op = graph.graph.node_weight(reader).expect("live node");
            reading_bf16(op.as_ref(), inputs).map(|op| (reader, op))
        })
        .collect()
}

fn replace_ops(graph: &mut Graph, ops: impl IntoIterator<Item = (NodeIndex, Box<dyn Operator>)>) {
    for (node, op) in ops {
        *graph.graph.node_weight_mut(node).expect("live node") = op;
    }
}

/// Makes every output of a fused attention kernel whose readers all take it in bf16 a bf16
/// output, as [`write_products_in_bf16`] does for cuBLAS's products.
pub fn write_fused_attention_in_bf16(graph: &mut Graph) {
    let kernels: Vec<(NodeIndex, usize)> = graph
        .graph
        .node_indices()
        .filter_map(|node| {
            let op = graph.graph.node_weight(node).expect("live node").as_any();
            if op.is::<CudaFusedAttention>() {
                Some((node, 1))
            } else if op.is::<CudaFusedAttentionGradient>() {
                Some((node, 3))
            } else {
                None
            }
        })
        .collect();
    for (node, outputs) in kernels {
        for output in 0..outputs {
            if is_output(graph, node) {
                continue;
            }
            let inputs_read = readers_of_output(graph, node, output as u8);
            let Some(readers) = readers_in_bf16(graph, &inputs_read) else {
                continue;
            };
            let any = graph.graph.node_weight(node).expect("live node").as_any();
            let kernel: Box<dyn Operator> = match any.downcast_ref::<CudaFusedAttention>() {
                Some(forward) => Box::new(forward.writing_bf16()),
                None => Box::new(
                    any.downcast_ref::<CudaFusedAttentionGradient>()
                        .expect("a fused attention gradient")
                        .writing_bf16(output),
                ),
            };
            replace_ops(graph, readers.into_iter().chain([(node, kernel)]));
        }
    }
}

/// Whether output `output` of `op` is written in bf16 (a cuBLAS product or a fused attention
/// kernel's result), so that GEMMs read it as it is.
pub fn writes_bf16(op: &dyn Operator, output: u8) -> bool {
    let any = op.as_any();
    if let Some(contraction) = any.downcast_ref::<CudaContraction>() {
        contraction.writes_bf16() && output == 0
    } else if let Some(forward) = any.downcast_ref::<CudaFusedAttention>() {
        forward.writes_bf16() && output == 0
    } else if let Some(gradient) = any.downcast_ref::<CudaFusedAttentionGradient>() {
        gradient.writes_bf16(usize::from(output))
    } else {
        false
    }
}

/// The inputs `op` reads as GEMM operands, in bf16 (all of a bf16 GEMM's, the queries, keys,
/// values and context gradient of fused attention), if it reads any so.
pub fn bf16_operand_inputs(op: &dyn Operator) -> Option<&'static [u8]> {
    let any = op.as_any();
    if any
        .downcast_ref::<CudaContraction>()
        .is_some_and(CudaContraction::reads_bf16)
    {
        Some(&[0, 1])
    } else if any.is::<CudaFusedAttention>() {
        Some(CudaFusedAttention::bf16_inputs())
    } else if any.is::<CudaFusedAttentionGradient>() {
        Some(CudaFusedAttentionGradient::bf16_inputs())
    } else {
        None
    }
}

/// The inputs a kernel reads in bf16 once it reads `added` in bf16 too, if `can_read` says it
/// can read each of them so.
pub fn more_bf16_inputs(
    current: &[u8],
    added: &[u8],
    can_read: impl Fn(u8) -> bool,
) -> Option<Vec<u8>> {
    added.iter().all(|&input| can_read(input)).then(|| {
        let mut all = current.to_vec();
        all.extend(added);
        all
    })
}

/// `op` reading its inputs `inputs` in bf16, where it is a kernel that can; a bf16 GEMM reads its
/// operands in bf16 already, and stays as it is.
fn reading_bf16(op: &dyn Operator, inputs: &[u8]) -> Option<Box<dyn Operator>> {
    let any = op.as_any();
    if let Some(contraction) = any.downcast_ref::<CudaContraction>() {
        contraction
            .reads_bf16()
            .then(|| Box::new(contraction.clone()) as Box<dyn Operator>)
    } else if let Some(inputs_bf16) = bf16_operand_inputs(op) {
        // Fused attention reads its operands in bf16 already.
        inputs
            .iter()
            .all(|input| inputs_bf16.contains(input))
            .then(|| dyn_clone_fused(op))
    } else if let Some(gelu) = any.downcast_ref::<CudaGeluKernel>() {
        Some(Box::new(gelu.reading_bf16(inputs)?))
    } else if let Some(probabilities) = any.downcast_ref::<CudaAttentionProbabilities>() {
        Some(Box::new(probabilities.reading_bf16(inputs)?))
    } else if let Some(fused) = any.downcast_ref::<CudaFusedElementwise>() {
        Some(Box::new(fused.reading_bf16(inputs)))
    } else if let Some(reduction) = any.downcast_ref::<CudaReduce>() {
        Some(Box::new(reduction.reading_bf16()))
    } else if let Some(logit_rows) = any.downcast_ref::<CudaLogitRows>() {
        Some(Box::new(logit_rows.reading_bf16(inputs)?))
    } else {
        None
    }
}

/// A fused attention kernel as it is.
fn dyn_clone_fused(op: &dyn Operator) -> Box<dyn Operator> {
    let any = op.as_any();
    match any.downcast_ref::<CudaFusedAttention>() {
        Some(forward) => Box::new(forward.clone()),
        None => Box::new(
            any.downcast_ref::<CudaFusedAttentionGradient>()
                .expect("a fused attention kernel")
                .clone(),
        ),
    }
}
