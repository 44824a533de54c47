//! [`AdamWStep`] on the GPU: one launch updates every tensor of the group ([`GroupBlocks`]), each
//! thread repeating [`crate::ops::adamw_element`]'s operations in its order, with products rounded
//! before they are added (no FMA contraction) as on the CPU. A thread loads and stores 4
//! neighbouring elements of each of the seven buffers at once (16 bytes): the step streams 28 bytes
//! an element, and ran at about half the memory bandwidth one element a thread (run 70: the largest
//! group 0.368 -> 0.326 ms, so loads in flight were only part of what held it back). The step
//! scalars are read on the device, so nothing waits for the host. A parameter or moment whose
//! buffer the op receives to own is updated in place; one still read by other ops gets a new
//! buffer.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, DevicePtr, DeviceRepr, LaunchAsync};

use super::{
    device_buffer::{device_slice, device_tensor, input_slice},
    group_blocks::{GroupBlocks, GROUP_THREADS},
    kernel::{blocks_of, float_literal, Kernel},
};
use crate::ops::{AdamWConstants, AdamWStep, ADAMW_SCALAR_INPUTS, MAX_GROUP};

/// The pointers the kernel reads (four per tensor) and writes (three per tensor).
const POINTERS_PER_TENSOR: usize = 7;

/// The device addresses of a group's buffers, passed by value: the kernel declares a struct of
/// `7 * TENSORS` pointers and receives the first ones of this array. At most 3,360 bytes, under
/// the 4 KiB of kernel parameters every CUDA version accepts.
#[derive(Clone, Copy)]
#[repr(C)]
struct PointerTable([u64; POINTERS_PER_TENSOR * MAX_GROUP]);

// SAFETY: a plain array of device addresses, which the kernel reads as a struct of pointers.
unsafe impl DeviceRepr for PointerTable {}

pub(super) fn source(constants: &AdamWConstants, blocks: &GroupBlocks, decays: &[bool]) -> String {
    let decays = decays
        .iter()
        .map(|&d| if d { "1" } else { "0" })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"{group}
__constant__ unsigned char decays[TENSORS] = {{{decays}}};
struct Tensors {{
    const float *parameter[TENSORS], *gradient[TENSORS], *exp_avg[TENSORS], *exp_avg_sq[TENSORS];
    float *new_parameter[TENSORS], *new_exp_avg[TENSORS], *new_exp_avg_sq[TENSORS];
}};
struct Step {{ float keep, scale, step_size, inverse_correction2_sqrt; bool decays; }};
__device__ void update(const Step &s, float p, float g, float m, float v, float *new_p, float *new_m,
                       float *new_v) {{
    if (s.decays) p = p * s.keep;
    g = g * s.scale;
    m = m + (g - m) * {one_minus_beta1};
    v = v * {beta2} + g * g * {one_minus_beta2};
    float denominator = sqrtf(v) * s.inverse_correction2_sqrt + {epsilon};
    *new_p = p - m * (1.0f / denominator) * s.step_size;
    *new_m = m;
    *new_v = v;
}}
__device__ float4 load4(const float *x, long long i) {{ return *reinterpret_cast<const float4 *>(x + i); }}
__device__ void store4(float *x, long long i, float4 v) {{ *reinterpret_cast<float4 *>(x + i) = v; }}
extern "C" __global__ void dropbert_kernel(Tensors t, const float *learning_rate,
        const float *bias_correction1, const float *bias_correction2, const float *gradient_scale) {{
    int k = tensor_of_block(blockIdx.x);
    long long start = (long long)(blockIdx.x - first_block[k]) * CHUNK;
    long long end = min(start + CHUNK, lengths[k]);
    float lr = *learning_rate;
    Step s = {{1.0f - lr * {weight_decay}, *gradient_scale, lr * (1.0f / *bias_correction1),
              1.0f / sqrtf(*bias_correction2), decays[k] != 0}};
    const float *p = t.parameter[k], *g = t.gradient[k], *m = t.exp_avg[k], *v = t.exp_avg_sq[k];
    // Four neighbours a thread: `start` is a multiple of CHUNK, so of 4, and the buffers are
    // aligned allocations; a tensor's last few elements past its whole fours go one by one.
    long long whole = start + ((end - start) & ~3LL);
    for (long long i = start + 4 * threadIdx.x; i < whole; i += 4 * blockDim.x) {{
        float4 p4 = load4(p, i), g4 = load4(g, i), m4 = load4(m, i), v4 = load4(v, i), np, nm, nv;
        update(s, p4.x, g4.x, m4.x, v4.x, &np.x, &nm.x, &nv.x);
        update(s, p4.y, g4.y, m4.y, v4.y, &np.y, &nm.y, &nv.y);
        update(s, p4.z, g4.z, m4.z, v4.z, &np.z, &nm.z, &nv.z);
        update(s, p4.w, g4.w, m4.w, v4.w, &np.w, &nm.w, &nv.w);
        store4(t.new_parameter[k], i, np);
        store4(t.new_exp_avg[k], i, nm);
        store4(t.new_exp_avg_sq[k], i, nv);
    }}
    for (long long i = whole + threadIdx.x; i < end; i += blockDim.x)
        update(s, p[i], g[i], m[i], v[i], &t.new_parameter[k][i], &t.new_exp_avg[k][i],
               &t.new_exp_avg_sq[k][i]);
}}"#,
        group = blocks.source(),
        weight_decay = float_literal(constants.weight_decay),
        one_minus_beta1 = float_literal(constants.one_minus_beta1),
        beta2 = float_literal(constants.beta2),
        one_minus_beta2 = float_literal(constants.one_minus_beta2),
        epsilon = float_literal(constants.epsilon),
    )
}

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaAdamWStep {
    op: AdamWStep,
    blocks: GroupBlocks,
    kernel: Kernel,
}

impl CudaAdamWStep {
    pub fn new(op: &AdamWStep, device: &Arc<CudaDevice>) -> Self {
        let blocks = GroupBlocks::new(&op.lengths);
        let kernel = Kernel::compile(device, &source(&op.constants, &blocks, &op.decays));
        Self {
            op: op.clone(),
            blocks,
            kernel,
        }
    }
}

impl Operator for CudaAdamWStep {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let count = self.op.lengths.len();
        assert_eq!(
            inputs.len(),
            ADAMW_SCALAR_INPUTS + 4 * count,
            "AdamW inputs"
        );
        let mut table = PointerTable([0; POINTERS_PER_TENSOR * MAX_GROUP]);
        for role in 0..4 {
            for tensor in 0..count {
                let input = &inputs[self.op.input_index(role, tensor)].0;
                table.0[role * count + tensor] = *input_slice(input, "AdamW").device_ptr();
            }
        }
        // Addresses: the scalars' buffers stay alive in `inputs` until the launch.
        let scalar =
            |index: usize| *input_slice(&inputs[index].0, "AdamW step scalar").device_ptr();
        let [lr, bias_correction1, bias_correction2, scale] = [0, 1, 2, 3].map(scalar);

        // Outputs: parameters (input role 0), then exp_avg (2), then exp_avg_sq (3).
        let mut inputs: Vec<Option<InputTensor>> =
            inputs.into_iter().map(|(input, _)| Some(input)).collect();
        let mut outputs = Vec::with_capacity(3 * count);
        for (output_role, input_role) in [0, 2, 3].into_iter().enumerate() {
            for (tensor, &len) in self.op.lengths.iter().enumerate() {
                let index = self.op.input_index(input_role, tensor);
                let output = match inputs[index].take().expect("each input is taken once") {
                    InputTensor::Owned(owned) if device_slice(&owned).is_some() => owned,
                    _ => device_tensor(
                        // Every element is written.
                        unsafe { self.kernel.device.alloc::<f32>(len) }.expect("GPU allocation"),
                    ),
                };
                let address = *device_slice(&output).expect("on the GPU").device_ptr();
                table.0[(4 + output_role) * count + tensor] = address;
                outputs.push(output);
            }
        }
        let config = blocks_of(self.blocks.blocks(), GROUP_THREADS);
        unsafe {
            self.kernel.function.clone().launch(
                config,
                (table, lr, bias_correction1, bias_correction2, scale),
            )
        }
        .expect("AdamW launch");
        outputs
    }
}
