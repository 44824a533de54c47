//! [`SumOfSquares`] on the GPU in two launches: every block of the group ([`GroupBlocks`]) writes
//! the sum of squares of its elements, then one block adds those partial sums. Both add in a fixed
//! order, so a step's norm does not change from run to run.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, DevicePtr, DeviceRepr, LaunchAsync};

use super::{
    device_buffer::{device_tensor, input_slice},
    group_blocks::{GroupBlocks, GROUP_THREADS},
    kernel::{blocks_of, int, Kernel},
};
use crate::ops::{SumOfSquares, MAX_SUMMED};

/// The tensors' device addresses, passed by value: the kernel declares `TENSORS` pointers and
/// receives the first ones of this array (at most 2,040 bytes of kernel parameters).
#[derive(Clone, Copy)]
#[repr(C)]
struct PointerTable([u64; MAX_SUMMED]);

// SAFETY: a plain array of device addresses, which the kernel reads as a struct of pointers.
unsafe impl DeviceRepr for PointerTable {}

/// `block_sum(v)`: the sum of `v` over a block of [`GROUP_THREADS`] threads, in thread 0, always
/// added in the same order.
fn block_sum() -> String {
    format!(
        r#"__device__ float block_sum(float v) {{
    __shared__ float partial[{GROUP_THREADS}];
    partial[threadIdx.x] = v;
    __syncthreads();
    for (int half = {GROUP_THREADS} / 2; half > 0; half >>= 1) {{
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }}
    return partial[0];
}}
"#
    )
}

pub(super) fn partial_sums_source(blocks: &GroupBlocks) -> String {
    format!(
        r#"{group}{block_sum}
struct Tensors {{ const float *x[TENSORS]; }};
extern "C" __global__ void dropbert_kernel(float *partial_sums, Tensors t) {{
    int k = tensor_of_block(blockIdx.x);
    long long start = (long long)(blockIdx.x - first_block[k]) * CHUNK;
    long long end = min(start + CHUNK, lengths[k]);
    const float *x = t.x[k];
    float sum = 0.0f;
    // Four neighbours a thread at once (`start` is a multiple of 4 and the buffers aligned
    // allocations), then the tensor's last few elements one by one.
    long long whole = start + ((end - start) & ~3LL);
    for (long long i = start + 4 * threadIdx.x; i < whole; i += 4 * blockDim.x) {{
        float4 v = *reinterpret_cast<const float4 *>(x + i);
        sum += (v.x * v.x + v.y * v.y) + (v.z * v.z + v.w * v.w);
    }}
    for (long long i = whole + threadIdx.x; i < end; i += blockDim.x) sum += x[i] * x[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) partial_sums[blockIdx.x] = sum;
}}"#,
        group = blocks.source(),
        block_sum = block_sum(),
    )
}

pub(super) fn total_source() -> String {
    format!(
        r#"{block_sum}
extern "C" __global__ void dropbert_kernel(float *total, const float *partial_sums, int count) {{
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial_sums[i];
    sum = block_sum(sum);
    if (threadIdx.x == 0) *total = sum;
}}"#,
        block_sum = block_sum(),
    )
}

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaSumOfSquares {
    blocks: GroupBlocks,
    partial_sums: Kernel,
    total: Kernel,
}

impl CudaSumOfSquares {
    pub fn new(op: &SumOfSquares, device: &Arc<CudaDevice>) -> Self {
        let blocks = GroupBlocks::new(&op.lengths);
        Self {
            partial_sums: Kernel::compile(device, &partial_sums_source(&blocks)),
            total: Kernel::compile(device, &total_source()),
            blocks,
        }
    }
}

impl Operator for CudaSumOfSquares {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let mut table = PointerTable([0; MAX_SUMMED]);
        for (address, (input, _)) in table.0.iter_mut().zip(&inputs) {
            *address = *input_slice(input, "SumOfSquares").device_ptr();
        }
        let device = &self.partial_sums.device;
        let blocks = self.blocks.blocks();
        // Every element of both is written.
        let mut partial_sums = unsafe { device.alloc::<f32>(blocks) }.expect("GPU allocation");
        let mut total = unsafe { device.alloc::<f32>(1) }.expect("GPU allocation");
        unsafe {
            self.partial_sums
                .function
                .clone()
                .launch(blocks_of(blocks, GROUP_THREADS), (&mut partial_sums, table))
        }
        .expect("SumOfSquares launch");
        unsafe {
            self.total.function.clone().launch(
                blocks_of(1, GROUP_THREADS),
                (&mut total, &partial_sums, int(blocks)),
            )
        }
        .expect("SumOfSquares total launch");
        vec![device_tensor(total)]
    }
}
