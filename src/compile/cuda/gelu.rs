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
    bf16_operands::input_addresses,
    bf16_products::more_bf16_inputs,
    bf16_rounding::{output_buffers, output_parameters, Store, BF16_BITS, BF16_VALUE},
    fused_elementwise::OutputBuffer,
    kernel::{float_literal as exact, int, per_element, Kernel},
    vector_access::{load4, store4},
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

/// What a GELU kernel computes: its length, its bias, whether it is the gradient, and which of its
/// inputs are bf16.
struct GeluShape<'a> {
    len: usize,
    bias_width: Option<usize>,
    gradient: bool,
    bf16_inputs: &'a [u8],
}

impl GeluShape<'_> {
    /// The inputs in order (`x`, the gradient's `dy`, the bias if any), each with whether it is
    /// read in bf16.
    fn inputs(&self) -> Vec<(&'static str, bool)> {
        let names = [
            Some("x"),
            self.gradient.then_some("dy"),
            self.bias_width.map(|_| "bias"),
        ];
        names
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(order, name)| (name, self.bf16_inputs.contains(&(order as u8))))
            .collect()
    }

    /// Whether each thread takes 4 neighbouring elements with vector loads and stores: where
    /// every group of 4 shares a row of the bias.
    fn vectorised(&self) -> bool {
        self.len.is_multiple_of(4) && self.bias_width.is_none_or(|width| width.is_multiple_of(4))
    }

    /// The value of element `c` of a thread's 4, read into the arrays `xv`, `dyv` and `bv`.
    fn value(&self) -> String {
        let argument = match self.bias_width {
            None => "xv[c]".to_string(),
            Some(_) => "(xv[c] + bv[c])".to_string(),
        };
        if self.gradient {
            format!("dyv[c] * gelu_derivative({argument})")
        } else {
            format!("gelu({argument})")
        }
    }

    fn source(&self, store: Store) -> String {
        let inputs = self.inputs();
        let parameters: Vec<String> = output_parameters(&[store])
            .into_iter()
            .chain(inputs.iter().map(|&(name, bf16)| {
                let ty = if bf16 { "unsigned short" } else { "float" };
                format!("const {ty} *__restrict__ {name}")
            }))
            .collect();
        let body = if self.vectorised() {
            self.vector_body(&inputs, store)
        } else {
            self.scalar_body(&inputs, store)
        };
        format!(
            r#"{BF16_BITS}{BF16_VALUE}{functions}
extern "C" __global__ void dropbert_kernel({parameters}, int len) {{
{body}
}}"#,
            functions = functions(),
            parameters = parameters.join(", "),
        )
    }

    /// Each thread takes 4 neighbours, loaded and stored as vectors.
    fn vector_body(&self, inputs: &[(&str, bool)], store: Store) -> String {
        let loads: Vec<String> = inputs
            .iter()
            .map(|&(name, bf16)| match name {
                "x" => load4("x", "i", "xv", bf16),
                "dy" => load4("dy", "i", "dyv", bf16),
                _ => {
                    let width = self.bias_width.expect("a bias");
                    load4("bias", &format!("(i % {width})"), "bv", bf16)
                }
            })
            .collect();
        format!(
            r#"    int i = (blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i >= len) return;
    float xv[4], dyv[4], bv[4], value[4];
    {loads}
    #pragma unroll
    for (int c = 0; c < 4; c++) value[c] = {value};
    {store}"#,
            loads = loads.join(
                "
    "
            ),
            value = self.value(),
            store = store4(store, "i", "value"),
        )
    }

    /// Each thread takes [`ELEMENTS_PER_THREAD`] elements a grid apart, so that every load stays
    /// coalesced.
    fn scalar_body(&self, inputs: &[(&str, bool)], store: Store) -> String {
        let loads: Vec<String> = inputs
            .iter()
            .map(|&(name, bf16)| {
                let (array, at) = match name {
                    "x" => ("xv", "i".to_string()),
                    "dy" => ("dyv", "i".to_string()),
                    _ => ("bv", format!("i % {}", self.bias_width.expect("a bias"))),
                };
                if bf16 {
                    format!("{array}[c] = bf16_value({name}[{at}]);")
                } else {
                    format!("{array}[c] = {name}[{at}];")
                }
            })
            .collect();
        format!(
            r#"    int first = blockIdx.x * blockDim.x + threadIdx.x, grid = gridDim.x * blockDim.x;
    const int c = 0;
    #pragma unroll
    for (int k = 0; k < {ELEMENTS_PER_THREAD}; k++) {{
        int i = first + k * grid;
        if (i >= len) continue;
        float xv[1], dyv[1], bv[1];
        {loads}
        {store}
    }}"#,
            loads = loads.join(" "),
            store = store.statement(0, "i", &self.value()),
        )
    }
}

/// The kernel of [`Gelu`] (`gradient` false) or [`GeluGradient`] over `len` elements, storing
/// its result as `store` says and reading the inputs `bf16_inputs` in bf16.
pub(super) fn source(
    len: usize,
    bias_width: Option<usize>,
    gradient: bool,
    store: Store,
    bf16_inputs: &[u8],
) -> String {
    let shape = GeluShape {
        len,
        bias_width,
        gradient,
        bf16_inputs,
    };
    shape.source(store)
}

/// Whether a GELU kernel can read input `input` in bf16: `x`, and the gradient's `dy`.
fn can_read_bf16(gradient: bool, input: u8) -> bool {
    input == 0 || (gradient && input == 1)
}

/// [`Gelu`] or [`GeluGradient`]: one thread per element, reading `x` (and `dy`, and the bias) as
/// plain buffers.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGeluKernel {
    len: usize,
    bias_width: Option<usize>,
    gradient: bool,
    bf16_inputs: Vec<u8>,
    store: Store,
    kernel: Kernel,
}

impl CudaGeluKernel {
    fn new(
        len: usize,
        bias_width: Option<usize>,
        gradient: bool,
        store: Store,
        bf16_inputs: Vec<u8>,
        device: &Arc<CudaDevice>,
    ) -> Self {
        let source = source(len, bias_width, gradient, store, &bf16_inputs);
        Self {
            len,
            bias_width,
            gradient,
            bf16_inputs,
            store,
            kernel: Kernel::compile(device, &source),
        }
    }

    pub fn forward(op: &Gelu, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.len, op.bias_width, false, Store::Float, vec![], device)
    }

    pub fn gradient(op: &GeluGradient, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.len, op.bias_width, true, Store::Float, vec![], device)
    }

    /// The same kernel storing its result as `store` says.
    pub fn storing(&self, store: Store) -> Self {
        Self::new(
            self.len,
            self.bias_width,
            self.gradient,
            store,
            self.bf16_inputs.clone(),
            &self.kernel.device,
        )
    }

    /// The same kernel reading `inputs` in bf16 too, if it can read them so.
    pub fn reading_bf16(&self, inputs: &[u8]) -> Option<Self> {
        let all = more_bf16_inputs(&self.bf16_inputs, inputs, |i| {
            can_read_bf16(self.gradient, i)
        })?;
        Some(Self::new(
            self.len,
            self.bias_width,
            self.gradient,
            self.store,
            all,
            &self.kernel.device,
        ))
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
        let ins = input_addresses(&inputs, &self.bf16_inputs, self.name());
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
