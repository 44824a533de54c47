//! Kernels that give each row of a `[rows, width]` buffer to one block of [`BLOCK_THREADS`]
//! threads, for rows too long for one warp (the masked-LM logits, a vocabulary wide): the threads
//! stride the row, then combine their partial results with warp shuffles and across the block's
//! warps through shared memory ([`BLOCK_REDUCTIONS`]). Cross-entropy and its gradient run this way.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync, LaunchConfig};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::Kernel,
};

/// Threads per block, one block per row; the kernel sources stride their rows by it.
pub const BLOCK_THREADS: u32 = 256;

/// Block-wide reductions, each called once per kernel (their shared slots are not reused), by
/// every thread of the block, which all get the result; they use `warp_max` of
/// [`super::warp_rows::WARP_REDUCTIONS`].
/// - `block_max(v)`: the maximum over the block.
/// - `add_exponential(&m, &s, v)` keeps a thread's running maximum `m` (-inf for none yet) and
///   `s = sum exp(v - m)` over the values it has seen, rescaling `s` when the maximum rises, so
///   a row is read once; `block_exponential_sum(&m, &s)` merges them over the block.
pub const BLOCK_REDUCTIONS: &str = r#"
#define NEGATIVE_INFINITY __int_as_float(0xff800000)
__device__ float block_max(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = warp_max(lane < (blockDim.x >> 5) ? partial[lane] : NEGATIVE_INFINITY);
        if (lane == 0) partial[0] = v;
    }
    __syncthreads();
    return partial[0];
}
__device__ void add_exponential(float *m, float *s, float v) {
    if (v > *m) {
        *s = *s * expf(*m - v) + 1.0f;
        *m = v;
    } else if (*m != NEGATIVE_INFINITY) {
        *s += expf(v - *m);
    }
}
__device__ void merge_exponential_sums(float *m, float *s, float other_m, float other_s) {
    float top = fmaxf(*m, other_m);
    if (top == NEGATIVE_INFINITY) return;
    *s = *s * expf(*m - top) + other_s * expf(other_m - top);
    *m = top;
}
__device__ void warp_exponential_sum(float *m, float *s) {
    for (int k = 16; k > 0; k >>= 1) {
        float other_m = __shfl_xor_sync(0xffffffffu, *m, k);
        float other_s = __shfl_xor_sync(0xffffffffu, *s, k);
        merge_exponential_sums(m, s, other_m, other_s);
    }
}
__device__ void block_exponential_sum(float *m, float *s) {
    __shared__ float partial_m[32], partial_s[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_exponential_sum(m, s);
    if (lane == 0) { partial_m[warp] = *m; partial_s[warp] = *s; }
    __syncthreads();
    if (warp == 0) {
        int used = lane < (blockDim.x >> 5);
        *m = used ? partial_m[lane] : NEGATIVE_INFINITY;
        *s = used ? partial_s[lane] : 0.0f;
        warp_exponential_sum(m, s);
        if (lane == 0) { partial_m[0] = *m; partial_s[0] = *s; }
    }
    __syncthreads();
    *m = partial_m[0];
    *s = partial_s[0];
}
"#;

/// A row kernel `dropbert_kernel(float *out, const float *in0, const float *in1
/// [, const float *in2])`, block `blockIdx.x` computing row `blockIdx.x`; its inputs are read as
/// plain buffers, and it writes `row_output` values per row.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaBlockRows {
    rows: usize,
    /// Values written per row: 1, or the row's width.
    row_output: usize,
    kernel: Kernel,
    name: &'static str,
}

impl CudaBlockRows {
    pub fn new(
        rows: usize,
        row_output: usize,
        source: &str,
        name: &'static str,
        device: &Arc<CudaDevice>,
    ) -> Self {
        Self {
            rows,
            row_output,
            kernel: Kernel::compile(device, source),
            name,
        }
    }
}

impl Operator for CudaBlockRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let len = self.rows * self.row_output;
        // Every element is written.
        let mut out = unsafe { self.kernel.device.alloc::<f32>(len) }.expect("GPU allocation");
        let config = LaunchConfig {
            grid_dim: (u32::try_from(self.rows).expect("grid"), 1, 1),
            block_dim: (BLOCK_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let function = self.kernel.function.clone();
        let first = input_slice(&inputs[0].0, self.name);
        let second = input_slice(&inputs[1].0, self.name);
        let launched = match inputs.get(2) {
            None => unsafe { function.launch(config, (&mut out, first, second)) },
            Some((third, _)) => {
                let third = input_slice(third, self.name);
                unsafe { function.launch(config, (&mut out, first, second, third)) }
            }
        };
        launched.unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name));
        vec![device_tensor(out)]
    }
}
