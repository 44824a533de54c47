//! [`Gelu`] and [`GeluGradient`] on the GPU: one thread per element, erf by the CPU's
//! approximation (its constants are generated into the source), so that the two backends differ
//! only by the rounding of `expf`.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::{int, per_element, Kernel},
};
use crate::ops::{Gelu, GeluGradient, ERF_A, ERF_P};

/// `float` literal of exactly `value`.
fn exact(value: f32) -> String {
    format!("__uint_as_float(0x{:08x}u)", value.to_bits())
}

/// The CUDA C functions `erf_approx`, `gelu` and `gelu_derivative`, as `crate::ops::gelu` computes
/// them.
fn functions() -> String {
    let a: Vec<String> = ERF_A.iter().map(|&a| exact(a)).collect();
    format!(
        r#"
__device__ float erf_approx(float x) {{
    float t = 1.0f / (1.0f + {p} * fabsf(x));
    float polynomial = (((({a4} * t + {a3}) * t + {a2}) * t + {a1}) * t + {a0}) * t;
    return copysignf(1.0f - polynomial * expf(-x * x), x);
}}
__device__ float gelu(float x) {{
    return 0.5f * x * (1.0f + erf_approx(x * {frac_1_sqrt_2}));
}}
__device__ float gelu_derivative(float x) {{
    float cdf = 0.5f * (1.0f + erf_approx(x * {frac_1_sqrt_2}));
    return cdf + x * {frac_1_sqrt_2pi} * expf(-0.5f * x * x);
}}
"#,
        p = exact(ERF_P),
        a0 = a[0],
        a1 = a[1],
        a2 = a[2],
        a3 = a[3],
        a4 = a[4],
        frac_1_sqrt_2 = exact(std::f32::consts::FRAC_1_SQRT_2),
        frac_1_sqrt_2pi = exact(0.398_942_3),
    )
}

pub(super) fn forward_source() -> String {
    functions()
        + r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *x, int len) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) out[i] = gelu(x[i]);
}"#
}

pub(super) fn gradient_source() -> String {
    functions()
        + r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *dy, int len) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) out[i] = dy[i] * gelu_derivative(x[i]);
}"#
}

/// [`Gelu`] or [`GeluGradient`]: one thread per element, reading `x` (and `dy`) as plain buffers.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGeluKernel {
    len: usize,
    kernel: Kernel,
    name: &'static str,
}

impl CudaGeluKernel {
    pub fn forward(op: &Gelu, device: &Arc<CudaDevice>) -> Self {
        Self {
            len: op.len,
            kernel: Kernel::compile(device, &forward_source()),
            name: "Gelu",
        }
    }

    pub fn gradient(op: &GeluGradient, device: &Arc<CudaDevice>) -> Self {
        Self {
            len: op.len,
            kernel: Kernel::compile(device, &gradient_source()),
            name: "GeluGradient",
        }
    }
}

impl Operator for CudaGeluKernel {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let mut out = unsafe { self.kernel.device.alloc::<f32>(self.len) }.expect("GPU allocation");
        let (function, config) = (self.kernel.function.clone(), per_element(self.len));
        let x = input_slice(&inputs[0].0, self.name);
        let launched = match inputs.get(1) {
            None => unsafe { function.launch(config, (&mut out, x, int(self.len))) },
            Some((dy, _)) => {
                let dy = input_slice(dy, self.name);
                unsafe { function.launch(config, (&mut out, x, dy, int(self.len))) }
            }
        };
        launched.unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name));
        vec![device_tensor(out)]
    }
}
