//! CPU passes: contractions (every multiply-then-sum over an axis, forward or backward) become
//! strided GEMM calls, and elementwise and reduction primitives run on strides precomputed at
//! compile time instead of interpreting index expressions per element.
mod contraction;
mod elementwise_fusion;
mod elementwise_kernel;
mod elementwise_recompute;
mod exp2;
mod heap;
mod operand_sums;
mod parallel;
mod strided_ops;
mod strided_view;

pub use contraction::{is_column_dot, stride_in, AxisStrides, Contraction, ContractionCompiler};
pub use elementwise_fusion::ElementwiseFusionCompiler;
pub use elementwise_kernel::FusedElementwise;
#[cfg(test)]
pub(crate) use elementwise_kernel::Program;
pub(crate) use elementwise_kernel::{Operand, Step, UnaryKind};
pub use heap::keep_freed_buffers;
pub use operand_sums::OperandSumsCompiler;
pub(crate) use parallel::{fill_in_chunks, run_tasks, thread_count, Shared};
pub(crate) use strided_ops::{BinaryKind, ReduceKind};
pub use strided_ops::{StridedBinary, StridedCopy, StridedOpsCompiler, StridedReduce};

/// The CPU pipeline, after luminal's generic passes.
pub type DropbertCpuCompiler = (
    ContractionCompiler,
    OperandSumsCompiler,
    ElementwiseFusionCompiler,
    StridedOpsCompiler,
);
