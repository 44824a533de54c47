//! CPU passes: contractions (every multiply-then-sum over an axis, forward or backward) become
//! strided GEMM calls, and elementwise and reduction primitives run on strides precomputed at
//! compile time instead of interpreting index expressions per element.
mod contraction;
mod strided_ops;
mod strided_view;

pub use contraction::{AxisStrides, Contraction, ContractionCompiler};
pub use strided_ops::{StridedBinary, StridedCopy, StridedOpsCompiler, StridedReduce};

/// The CPU pipeline, after luminal's generic passes.
pub type DropbertCpuCompiler = (ContractionCompiler, StridedOpsCompiler);
