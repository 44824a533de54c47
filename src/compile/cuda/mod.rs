//! CUDA passes: luminal_cuda compiles luminal's primitives; contractions run on cuBLAS (planned
//! by the CPU's contraction pass); chains of elementwise primitives run as one generated kernel
//! each (planned by the CPU's fusion pass), and reductions over strided views as warp-cooperative
//! kernels; dropbert's own ops (row gathers and scatters, view adjoints, gates, token dropping's
//! selection and importance update, dropout masks, GELU, softmax, attention's probabilities,
//! LayerNorm's normalization, the masked-LM loss's cross-entropy and accuracy, the optimizer's
//! gradient norm and AdamW step) become CUDA kernels of their own. Every kernel is compiled by
//! NVRTC when the graph is compiled.
#[cfg(feature = "cuda")]
mod adamw_step;
#[cfg(feature = "cuda")]
mod attention_probabilities;
#[cfg(feature = "cuda")]
mod bf16_operands;
#[cfg(feature = "cuda")]
mod bf16_products;
#[cfg(feature = "cuda")]
mod block_rows;
#[cfg(feature = "cuda")]
mod column_dots;
#[cfg(feature = "cuda")]
mod compiler;
#[cfg(feature = "cuda")]
mod contraction;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod copy_ops;
#[cfg(feature = "cuda")]
mod device_buffer;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod device_inputs;
#[cfg(feature = "cuda")]
mod device_marks;
#[cfg(feature = "cuda")]
mod dropout_mask;
#[cfg(feature = "cuda")]
mod fused_attention;
#[cfg(feature = "cuda")]
mod fused_elementwise;
#[cfg(feature = "cuda")]
mod gates;
#[cfg(feature = "cuda")]
mod gelu;
#[cfg(feature = "cuda")]
mod gemm_pointers;
#[cfg(feature = "cuda")]
mod importance;
#[cfg(feature = "cuda")]
mod kept_tokens;
#[cfg(feature = "cuda")]
mod kernel;
#[cfg(feature = "cuda")]
mod logit_rows;
#[cfg(feature = "cuda")]
pub mod memory_pool;
#[cfg(feature = "cuda")]
mod normalize;
#[cfg(feature = "cuda")]
pub mod op_timeline;
#[cfg(feature = "cuda")]
mod packed_dropout_masks;
#[cfg(feature = "cuda")]
mod pinned_buffer;
#[cfg(feature = "cuda")]
mod pinned_downloads;
#[cfg(feature = "cuda")]
mod pinned_uploads;
#[cfg(test)]
mod plan_emulation;
#[cfg(feature = "cuda")]
mod reduce;
#[cfg(feature = "cuda")]
mod row_kernel;
#[cfg(feature = "cuda")]
mod rows;
#[cfg(feature = "cuda")]
mod softmax;
#[cfg(feature = "cuda")]
mod stream_event;
#[cfg(feature = "cuda")]
mod sum_of_squares;
#[cfg(feature = "cuda")]
mod view_adjoint;
#[cfg(feature = "cuda")]
mod warp_rows;
// Plain Rust, so their tests run without a GPU.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod attention_fusion;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod attention_shape;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod bf16_rounding;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod elementwise_source;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod flat_index;
#[cfg(feature = "cuda")]
mod fused_attention_source;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod gemm_batching;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod group_blocks;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod host_transfers;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod readers;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod reduce_source;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod vector_access;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod view_expression;

#[cfg(feature = "cuda")]
pub use compiler::DropbertCudaCompiler;
#[cfg(feature = "cuda")]
pub use device_buffer::copy_to_host;
#[cfg(feature = "cuda")]
pub use device_inputs::upload_host_values;
#[cfg(feature = "cuda")]
pub use device_marks::DeviceMarks;
pub use host_transfers::last_uploads_queued;

/// The compiler pass that makes the readers of `inputs` read them where they are, on the device,
/// without an upload node each (see `device_inputs`).
#[cfg(feature = "cuda")]
pub fn read_in_place(inputs: Vec<luminal::prelude::NodeIndex>) -> impl luminal::prelude::Compiler {
    device_inputs::ReadInPlace {
        inputs,
        is_upload: copy_ops::is_upload,
    }
}

/// Every kernel source through NVRTC, which needs no GPU: `cargo test --features cuda` with the
/// CUDA libraries on the library path (`cargo xtask cuda-sdk` gives them; the driver stub must be
/// findable as `libcuda.so.1`).
#[cfg(all(test, feature = "cuda"))]
mod nvrtc_tests {
    use luminal::prelude::*;

    use super::*;
    use crate::ops::KeptTokenRule;
    use bf16_rounding::Store;
    use elementwise_source::ElementwiseSource;
    use logit_rows::LogitRowsKernel::{Argmax, Gradient, Loss};
    use reduce_source::ReduceSource;

    #[test]
    fn the_fused_attention_kernels_compile_for_the_tensor_cores() {
        use attention_shape::{tests::bert_base, AttentionShape};
        use fused_attention_source::{backward_source, forward_source, tests::token_major};
        use kernel::{ptx_for, TENSOR_CORE_ARCH};
        // All tokens, the kept tokens, the split layer's kept queries over all keys, a fixture's
        // size without dropout, and keys that are no multiple of 8.
        let shapes = [
            bert_base(128, 128),
            bert_base(64, 64),
            bert_base(64, 128),
            AttentionShape {
                batch: 4,
                heads: 2,
                queries: 16,
                keys: 16,
                head_dim: 16,
                scale: 0.25,
                mask: None,
            },
            AttentionShape {
                queries: 12,
                keys: 12,
                head_dim: 32,
                ..bert_base(12, 12)
            },
        ];
        // DROPBERT_PTX_DIR=dir keeps each kernel's PTX there, for `ptxas -v` (registers, spills).
        let keep = std::env::var("DROPBERT_PTX_DIR").ok();
        for (index, shape) in shapes.iter().enumerate() {
            let layout = token_major(shape.keys, shape.heads, shape.head_dim);
            let kernels = [
                ("forward", forward_source(shape, [layout; 4], false, false)),
                (
                    "forward-bf16-mask",
                    forward_source(shape, [layout; 4], true, true),
                ),
                (
                    "backward",
                    backward_source(shape, [layout; 7], [true, false, true]),
                ),
            ];
            for (name, source) in kernels {
                let ptx = ptx_for(&source, TENSOR_CORE_ARCH).to_src();
                for instruction in ["mma.sync.aligned.m16n8k16", "ldmatrix.sync", "cp.async"] {
                    assert!(
                        ptx.contains(instruction),
                        "{name} {index} lacks {instruction}"
                    );
                }
                if let Some(dir) = &keep {
                    std::fs::write(format!("{dir}/{name}-{index}.ptx"), ptx).unwrap();
                }
            }
        }
    }

    #[test]
    fn every_kernel_compiles() {
        let mut sliced = ShapeTracker::new(&[6.into(), 5.into()]);
        sliced.slice(&[(1.into(), 4.into()), (2.into(), 5.into())]);
        let rule = KeptTokenRule {
            seq: 16,
            kept: 8,
            by_importance: 8,
            allow: vec![100, 101, 102, 103],
            deny: vec![0],
        };
        let bert_logits = crate::ops::LogitRows {
            rows: 5120,
            width: 30528,
            classes: 30522,
        };
        let short_logits = crate::ops::LogitRows {
            rows: 3,
            width: 9,
            classes: 7,
        };
        let sources = [
            rows::gather_source(768),
            rows::gather_source(7),
            rows::scatter_add_source(),
            rows::write_rows_source("rows[e]"),
            rows::write_rows_source("0.0f"),
            view_adjoint::view_adjoint_source(&sliced),
            kept_tokens::kernel_source(&rule),
            kept_tokens::kernel_source(&KeptTokenRule {
                allow: vec![],
                deny: vec![],
                ..rule.clone()
            }),
            importance::source(),
            gelu::source(1000, None, false, bf16_rounding::Store::Float, &[]),
            gelu::source(98304, Some(3072), false, bf16_rounding::Store::Both, &[0]),
            gelu::source(98304, Some(3072), true, bf16_rounding::Store::Bf16, &[0, 1]),
            gelu::source(1001, None, true, bf16_rounding::Store::Float, &[1]),
            // Scalar kernels: a length and a bias not in groups of 4.
            gelu::source(1001, None, false, bf16_rounding::Store::Both, &[0]),
            gelu::source(90, Some(9), true, bf16_rounding::Store::Bf16, &[0, 1]),
            softmax::forward_source(128),
            softmax::gradient_source(512),
            {
                let rows = crate::ops::AttentionRows {
                    rows: 256 * 12 * 128,
                    rows_per_sequence: 12 * 128,
                    keys: 128,
                    scale: 0.125,
                    dropout: Some(crate::ops::AttentionDropout {
                        rate: 0.1,
                        stream: 3,
                    }),
                };
                let store = bf16_rounding::Store::Both;
                attention_probabilities::source(&rows, false, store, &[0])
            },
            {
                // The gradient at 128 keys: four rows a warp, both products read in bf16.
                let rows = crate::ops::AttentionRows {
                    rows: 256 * 12 * 128,
                    rows_per_sequence: 12 * 128,
                    keys: 128,
                    scale: 0.125,
                    dropout: Some(crate::ops::AttentionDropout {
                        rate: 0.1,
                        stream: 3,
                    }),
                };
                attention_probabilities::source(&rows, true, bf16_rounding::Store::Bf16, &[0, 2])
            },
            {
                // Token dropping's 64 kept keys: a row to 8 lanes, four groups a warp.
                let rows = crate::ops::AttentionRows {
                    rows: 256 * 12 * 64,
                    rows_per_sequence: 12 * 64,
                    keys: 64,
                    scale: 0.125,
                    dropout: Some(crate::ops::AttentionDropout {
                        rate: 0.1,
                        stream: 3,
                    }),
                };
                attention_probabilities::source(&rows, false, bf16_rounding::Store::Bf16, &[0])
            },
            {
                // Token dropping's kept keys, not a multiple of 4; no dropout.
                let rows = crate::ops::AttentionRows {
                    rows: 4 * 2 * 16,
                    rows_per_sequence: 2 * 16,
                    keys: 7,
                    scale: 0.5,
                    dropout: None,
                };
                attention_probabilities::source(&rows, true, bf16_rounding::Store::Float, &[0, 2])
            },
            {
                let rows = crate::ops::AttentionRows {
                    rows: 32 * 12 * 512,
                    rows_per_sequence: 12 * 512,
                    keys: 512,
                    scale: 0.125,
                    dropout: Some(crate::ops::AttentionDropout {
                        rate: 0.1,
                        stream: 3,
                    }),
                };
                attention_probabilities::source(&rows, true, bf16_rounding::Store::Bf16, &[2])
            },
            normalize::forward_source(768, 1e-12),
            normalize::gradient_source(768, 1e-12),
            dropout_mask::source(),
            dropout_mask::packed_source(),
            bf16_rounding::rounding_source(),
            // BERT's vocabulary, its logits padded: rows of many strides of a block.
            logit_rows::source(Loss, bert_logits, false, Store::Float),
            logit_rows::source(Gradient, bert_logits, false, Store::Float),
            logit_rows::source(Argmax, bert_logits, false, Store::Float),
            // Under --matmul bf16: logits read in bf16, the gradient stored in bf16.
            logit_rows::source(Loss, bert_logits, true, Store::Float),
            logit_rows::source(Gradient, bert_logits, true, Store::Bf16),
            logit_rows::source(Gradient, bert_logits, false, Store::Both),
            logit_rows::source(Argmax, bert_logits, true, Store::Float),
            // Rows shorter than a warp, of a width no multiple of 4 (read one value at a time).
            logit_rows::source(Loss, short_logits, false, Store::Float),
            logit_rows::source(Gradient, short_logits, true, Store::Both),
            logit_rows::source(Argmax, short_logits, false, Store::Float),
            {
                let blocks = group_blocks::GroupBlocks::new(&[768 * 768, 768, 30522 * 768]);
                let constants = crate::ops::AdamWConstants {
                    one_minus_beta1: 0.1,
                    beta2: 0.999,
                    one_minus_beta2: 0.001,
                    epsilon: 1e-6,
                    weight_decay: 0.01,
                };
                adamw_step::source(&constants, &blocks, &[true, false, true])
            },
            sum_of_squares::partial_sums_source(&group_blocks::GroupBlocks::new(&[5, 70000])),
            sum_of_squares::total_source(),
            {
                let (loops, axes) = contraction::tests::batched_plan();
                contraction::kernel_source(&loops, axes)
            },
            // A LayerNorm weight's gradient: 32 neighbouring outputs a block, K in 16 chunks.
            column_dots::partial_sums_source(
                &[(768, 1, 1, 1)],
                [(1, 0, 0, 0), (1, 0, 0, 0), (32768, 768, 768, 0)],
                16,
                None,
            ),
            // ... with its bias's gradient, the sum of the operand y.
            column_dots::partial_sums_source(
                &[(768, 1, 1, 1)],
                [(1, 0, 0, 0), (1, 0, 0, 0), (32768, 768, 768, 0)],
                16,
                Some(1),
            ),
            column_dots::totals_source(16),
            // A LayerNorm's row sums: a warp per output.
            contraction::kernel_source(
                &[(4096, 768, 768, 1)],
                [(1, 0, 0, 0), (1, 0, 0, 0), (768, 1, 1, 0)],
            ),
            {
                let (loops, axes) = contraction::tests::batch_innermost_plan();
                contraction::scatter_source(&loops, axes)
            },
            // Attention's scores at BERT-base's 256 x 128: heads, then sequences.
            gemm_pointers::source(&[(12, 64, 64, 16384), (256, 98304, 98304, 196608)]),
        ];
        let fused = elementwise_source::examples::programs()
            .into_iter()
            .chain(elementwise_source::examples::huge())
            .flat_map(|(op, lengths)| {
                let plain = ElementwiseSource::new(&op, lengths.len());
                // The first result also as a bf16 copy, the others as bf16 only.
                let stores = (0..plain.output_count())
                    .map(|o| match o {
                        0 => bf16_rounding::Store::Both,
                        _ => bf16_rounding::Store::Bf16,
                    })
                    .collect();
                // And every input read in bf16.
                let all_inputs: Vec<u8> = (0..lengths.len() as u8).collect();
                let widened = plain.clone().reading_bf16(&all_inputs).source();
                // And the first input a packed dropout mask.
                let mask = elementwise_source::InputKind::MaskBits { scale: 1.0 / 0.9 };
                let masked = plain.clone().reading(0, mask).source();
                [
                    plain.source(),
                    plain.with_stores(stores).source(),
                    widened,
                    masked,
                ]
            });
        let reductions = reduce_source::examples::reductions()
            .into_iter()
            .chain(reduce_source::examples::huge())
            .flat_map(|(kind, view, axis)| {
                let plain = ReduceSource::of_view(kind, &view, axis).expect("a strided view");
                [plain.source(), plain.reading_bf16().source()]
            });
        for source in sources.into_iter().chain(fused).chain(reductions) {
            kernel::ptx(&source);
        }
    }
}
