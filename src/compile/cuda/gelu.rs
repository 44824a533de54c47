//! [`Gelu`] and [`GeluGradient`] on the GPU: one thread per element, erf by the CPU's
//! approximation (its constants are generated into the source), so that the two backends differ
//! only by rounding (see `functions`).
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use std::ffi::c_void;

use luminal_cudarc::driver::{CudaDevice, DeviceRepr, LaunchAsync};

use super::{
    bf16_rounding::{output_buffers, output_parameters, Store, BF16_BITS},
    device_buffer::input_slice,
    fused_elementwise::OutputBuffer,
    kernel::{float_literal as exact, int, per_element, Kernel},
};
use crate::ops::{Gelu, GeluGradient, ERF_A, ERF_P};

/// The CUDA C functions `erf_approx`, `gelu` and `gelu_derivative`, as `crate::ops::gelu` computes
/// them but with the GPU's fast instructions: the polynomial as fused multiply-adds, the
/// reciprocal and the exponentials by the special-function unit (`__fdividef`, `__expf`, a few
/// ulp). Run 21's profile showed the exact forms (IEEE reciprocal, `expf`, no contraction) make
/// these kernels bound by instructions, not by memory, at about half the memory's bandwidth.
fn functions() -> String {
    let a: Vec<String> = ERF_A.iter().map(|&a| exact(a)).collect();
    format!(
        r#"
__device__ float erf_approx(float x) {{
    float t = __fdividef(1.0f, __fmaf_rn({p}, fabsf(x), 1.0f));
    float polynomial = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn({a4}, t, {a3}), t, {a2}), t, {a1}), t, {a0}) * t;
    return copysignf(__fmaf_rn(-polynomial, __expf(-x * x), 1.0f), x);
}}
__device__ float gelu(float x) {{
    return 0.5f * x * (1.0f + erf_approx(x * {frac_1_sqrt_2}));
}}
__device__ float gelu_derivative(float x) {{
    float cdf = 0.5f * (1.0f + erf_approx(x * {frac_1_sqrt_2}));
    return __fmaf_rn(x * {frac_1_sqrt_2pi}, __expf(-0.5f * x * x), cdf);
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

/// Elements per thread: the arithmetic of one waits on its loads less when the thread has
/// others in flight.
const ELEMENTS_PER_THREAD: usize = 4;

/// A kernel computing `value` for each `i < len` and storing it as `store` says; each thread
/// takes [`ELEMENTS_PER_THREAD`] elements a grid apart, so that every load stays coalesced.
fn elementwise_source(inputs: &[&str], value: &str, store: Store) -> String {
    let parameters: Vec<String> = output_parameters(&[store])
        .into_iter()
        .chain(
            inputs
                .iter()
                .map(|name| format!("const float *__restrict__ {name}")),
        )
        .collect();
    format!(
        r#"{BF16_BITS}{functions}
extern "C" __global__ void dropbert_kernel({parameters}, int len) {{
    int first = blockIdx.x * blockDim.x + threadIdx.x, grid = gridDim.x * blockDim.x;
    #pragma unroll
    for (int k = 0; k < {ELEMENTS_PER_THREAD}; k++) {{
        int i = first + k * grid;
        if (i < len) {{ {statement} }}
    }}
}}"#,
        functions = functions(),
        parameters = parameters.join(", "),
        statement = store.statement(0, "i", value),
    )
}

/// The kernel's inputs after `x` and the other inputs `before`, and its expression of the GELU's
/// argument: `x[i]`, plus the bias's `i % width` value where there is one.
fn biased(before: &[&'static str], bias_width: Option<usize>) -> (Vec<&'static str>, String) {
    let mut inputs = vec!["x"];
    inputs.extend(before);
    match bias_width {
        None => (inputs, "x[i]".into()),
        Some(width) => {
            inputs.push("bias");
            (inputs, format!("(x[i] + bias[i % {width}])"))
        }
    }
}

pub(super) fn forward_source(bias_width: Option<usize>, store: Store) -> String {
    let (inputs, x) = biased(&[], bias_width);
    elementwise_source(&inputs, &format!("gelu({x})"), store)
}

pub(super) fn gradient_source(bias_width: Option<usize>, store: Store) -> String {
    let (inputs, x) = biased(&["dy"], bias_width);
    elementwise_source(&inputs, &format!("dy[i] * gelu_derivative({x})"), store)
}

/// [`Gelu`] or [`GeluGradient`]: one thread per element, reading `x` (and `dy`, and the bias) as
/// plain buffers.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGeluKernel {
    len: usize,
    bias_width: Option<usize>,
    gradient: bool,
    store: Store,
    kernel: Kernel,
}

impl CudaGeluKernel {
    fn new(
        len: usize,
        bias_width: Option<usize>,
        gradient: bool,
        store: Store,
        device: &Arc<CudaDevice>,
    ) -> Self {
        let source = if gradient {
            gradient_source(bias_width, store)
        } else {
            forward_source(bias_width, store)
        };
        Self {
            len,
            bias_width,
            gradient,
            store,
            kernel: Kernel::compile(device, &source),
        }
    }

    pub fn forward(op: &Gelu, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.len, op.bias_width, false, Store::Float, device)
    }

    pub fn gradient(op: &GeluGradient, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.len, op.bias_width, true, Store::Float, device)
    }

    /// The same kernel storing its result as `store` says.
    pub fn storing(&self, store: Store) -> Self {
        Self::new(
            self.len,
            self.bias_width,
            self.gradient,
            store,
            &self.kernel.device,
        )
    }

    fn name(&self) -> &'static str {
        if self.gradient {
            "GeluGradient"
        } else {
            "Gelu"
        }
    }
}

impl Operator for CudaGeluKernel {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let outs: Vec<OutputBuffer> = output_buffers(&[self.store])
            .into_iter()
            .map(|(_, bf16)| OutputBuffer::new(&self.kernel.device, bf16, self.len))
            .collect();
        let ins: Vec<_> = inputs
            .iter()
            .map(|(input, _)| input_slice(input, self.name()))
            .collect();
        let len = int(self.len);
        // The parameters point into `outs`, `ins` and `len`, which outlive the launch call.
        let mut parameters: Vec<*mut c_void> = outs
            .iter()
            .map(OutputBuffer::parameter)
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain([len.as_kernel_param()])
            .collect();
        unsafe {
            self.kernel.function.clone().launch(
                per_element(self.len.div_ceil(ELEMENTS_PER_THREAD)),
                &mut parameters,
            )
        }
        .unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name()));
        outs.into_iter().map(OutputBuffer::tensor).collect()
    }
}
