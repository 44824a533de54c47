//! [`CrossEntropy`], [`CrossEntropyGradient`] and [`LabelIsArgmax`] on the GPU
//! ([`CudaLogitRows`]): one block a row, the row width and class count baked in. Each logit is
//! the decoder's product plus its bias, added as the product is read. One pass over a row's
//! classes gives their maximum and exponential sum; the gradient then writes the row in a second
//! pass, zeros in its padding. Where the width is a multiple of 4 (the decoder's always is), a
//! thread loads 4 neighbouring values at once (8 bytes of a bf16 product, 16 of a float32 one),
//! two such loads in flight, and the gradient stores 4 at once. An unused slot's row (negative
//! label) reads nothing and gives 0; a label outside the classes stops the kernel (`__trap`), as
//! the CPU kernels' asserts do.
//!
//! Under `--matmul bf16` the decoder's GEMM writes its product in bf16 for these kernels alone
//! (`bf16_products`), and the gradient is written in bf16 where only bf16 readers take it (the
//! decoder's two GEMMs and the bias gradient's sum).
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, DevicePtr, DeviceRepr, LaunchAsync, LaunchConfig};

use super::{
    bf16_operands::input_address,
    bf16_rounding::{output_buffers, output_parameters, Store, BF16_BITS, BF16_VALUE},
    block_rows::{BLOCK_REDUCTIONS, BLOCK_THREADS},
    device_buffer::input_slice,
    fused_elementwise::OutputBuffer,
    kernel::{int, Kernel},
    warp_rows::WARP_REDUCTIONS,
};
use crate::ops::{CrossEntropy, CrossEntropyGradient, LabelIsArgmax, LogitRows};

/// Neighbouring values a thread loads at once where the width allows.
const VECTOR: usize = 4;

/// What a [`CudaLogitRows`] kernel computes for each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitRowsKernel {
    /// The cross-entropy: one value a row.
    Loss,
    /// The cross-entropy's gradient: a row of `width` values.
    Gradient,
    /// Whether the label has the highest logit: one value a row.
    Argmax,
}

/// A row kernel over the logits:
/// `dropbert_kernel(outputs..., product, bias, labels[, d], rows)`.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaLogitRows {
    computes: LogitRowsKernel,
    rows: LogitRows,
    logits_bf16: bool,
    /// How the gradient is stored (the other kernels write float32 values).
    store: Store,
    kernel: Kernel,
}

impl CudaLogitRows {
    pub fn loss(op: &CrossEntropy, device: &Arc<CudaDevice>) -> Self {
        Self::new(LogitRowsKernel::Loss, op.0, false, Store::Float, device)
    }

    pub fn gradient(op: &CrossEntropyGradient, device: &Arc<CudaDevice>) -> Self {
        Self::new(LogitRowsKernel::Gradient, op.0, false, Store::Float, device)
    }

    pub fn argmax(op: &LabelIsArgmax, device: &Arc<CudaDevice>) -> Self {
        Self::new(LogitRowsKernel::Argmax, op.0, false, Store::Float, device)
    }

    fn new(
        computes: LogitRowsKernel,
        rows: LogitRows,
        logits_bf16: bool,
        store: Store,
        device: &Arc<CudaDevice>,
    ) -> Self {
        let source = source(computes, rows, logits_bf16, store);
        Self {
            computes,
            rows,
            logits_bf16,
            store,
            kernel: Kernel::compile(device, &source),
        }
    }

    pub fn computes(&self) -> LogitRowsKernel {
        self.computes
    }

    /// The same kernel reading the decoder's product in bf16, where `inputs` (those a bf16
    /// producer writes) are that product alone.
    pub fn reading_bf16(&self, inputs: &[u8]) -> Option<Self> {
        (inputs == [LogitRows::PRODUCT]).then(|| {
            Self::new(
                self.computes,
                self.rows,
                true,
                self.store,
                &self.kernel.device,
            )
        })
    }

    /// The gradient kernel storing its result as `store` says.
    pub fn storing(&self, store: Store) -> Self {
        assert_eq!(
            self.computes,
            LogitRowsKernel::Gradient,
            "only the gradient writes rows"
        );
        Self::new(
            self.computes,
            self.rows,
            self.logits_bf16,
            store,
            &self.kernel.device,
        )
    }

    fn values_per_row(&self) -> usize {
        match self.computes {
            LogitRowsKernel::Gradient => self.rows.width,
            LogitRowsKernel::Loss | LogitRowsKernel::Argmax => 1,
        }
    }
}

impl Operator for CudaLogitRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let device = &self.kernel.device;
        let what = "logit rows";
        let product = LogitRows::PRODUCT as usize;
        let mut ins = vec![input_address(&inputs[product].0, self.logits_bf16, what)];
        ins.extend(
            inputs[product + 1..]
                .iter()
                .map(|(input, _)| *input_slice(input, what).device_ptr()),
        );
        let len = self.rows.rows * self.values_per_row();
        // Every element of every buffer is written.
        let outs: Vec<OutputBuffer> = output_buffers(&[self.store])
            .into_iter()
            .map(|(_, bf16)| OutputBuffer::new(device, bf16, len))
            .collect();
        let rows = int(self.rows.rows);
        // The parameters point into `outs`, `ins` and `rows`, which outlive the launch call.
        let mut parameters: Vec<*mut c_void> = outs
            .iter()
            .map(OutputBuffer::parameter)
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain([rows.as_kernel_param()])
            .collect();
        let config = LaunchConfig {
            grid_dim: (u32::try_from(self.rows.rows).expect("grid").max(1), 1, 1),
            block_dim: (BLOCK_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
            .unwrap_or_else(|e| panic!("{:?} launch: {e:?}", self.computes));
        outs.into_iter().map(OutputBuffer::tensor).collect()
    }
}

/// The kernel's source.
pub(super) fn source(
    computes: LogitRowsKernel,
    rows: LogitRows,
    logits_bf16: bool,
    store: Store,
) -> String {
    let helpers = row_helpers(rows, logits_bf16);
    let LogitRows { width, classes, .. } = rows;
    let groups = whole_groups(classes, width);
    let tail = VECTOR * groups;
    let threads = BLOCK_THREADS;
    let inputs = "const logit_t *x, const float *bias, const float *labels";
    match computes {
        LogitRowsKernel::Loss => format!(
            r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, {inputs}, int rows) {{
    int c;
    const logit_t *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    {sum}
    if (threadIdx.x == 0) out[blockIdx.x] = logf(s) - (LOGIT(row, c) - m);
}}"#,
            sum = row_exponential_sum(rows),
        ),
        LogitRowsKernel::Argmax => format!(
            r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, {inputs}, int rows) {{
    int c;
    const logit_t *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    float m = NEGATIVE_INFINITY;
    for (int g = threadIdx.x; g < {groups}; g += {threads}) {{
        float4 v = logits4(row, bias, g);
        m = fmaxf(fmaxf(m, fmaxf(v.x, v.y)), fmaxf(v.z, v.w));
    }}
    for (int j = {tail} + threadIdx.x; j < {classes}; j += {threads}) m = fmaxf(m, LOGIT(row, j));
    m = block_max(m);
    if (threadIdx.x == 0) out[blockIdx.x] = LOGIT(row, c) >= m ? 1.0f : 0.0f;
}}"#
        ),
        LogitRowsKernel::Gradient => {
            let outputs = output_parameters(&[store]).join(", ");
            let zero = store.statement(0, "at + j", "0.0f");
            let zeros = store.statement4(0, "at + 4 * g", "make_float4(0.0f, 0.0f, 0.0f, 0.0f)");
            let value = store.statement(
                0,
                "at + j",
                "j < classes ? (expf(LOGIT(row, j) - m) * inverse - (j == c)) * scale : 0.0f",
            );
            let values = store.statement4(0, "at + 4 * g", "o");
            format!(
                r#"{helpers}{BF16_BITS}
extern "C" __global__ void dropbert_kernel({outputs}, {inputs}, const float *d, int rows) {{
    const int classes = {classes};
    int r = blockIdx.x, c = label_column(labels[r]);
    long long at = (long long)r * {width};
    if (c < 0) {{
        for (int g = threadIdx.x; g < {all_groups}; g += {threads}) {{ {zeros} }}
        for (int j = {all_tail} + threadIdx.x; j < {width}; j += {threads}) {{ {zero} }}
        return;
    }}
    const logit_t *row = x + at;
    {sum}
    float inverse = 1.0f / s, scale = d[r];
    for (int g = threadIdx.x; g < {groups}; g += {threads}) {{
        float4 v = logits4(row, bias, g);
        int j = 4 * g;
        float4 o = make_float4((expf(v.x - m) * inverse - (j == c)) * scale,
                               (expf(v.y - m) * inverse - (j + 1 == c)) * scale,
                               (expf(v.z - m) * inverse - (j + 2 == c)) * scale,
                               (expf(v.w - m) * inverse - (j + 3 == c)) * scale);
        {values}
    }}
    for (int j = {tail} + threadIdx.x; j < {width}; j += {threads}) {{ {value} }}
}}"#,
                sum = row_exponential_sum(rows),
                all_groups = whole_groups(width, width),
                all_tail = VECTOR * whole_groups(width, width),
            )
        }
    }
}

/// The groups of [`VECTOR`] neighbouring values a row's threads take at once among its first
/// `columns`: all whole groups where the row's `width` is a multiple of it (so every group is
/// aligned), else none.
fn whole_groups(columns: usize, width: usize) -> usize {
    if width.is_multiple_of(VECTOR) {
        columns / VECTOR
    } else {
        0
    }
}

/// The reductions, the product's type `logit_t`, `LOGIT(row, j)` (a logit as a float: the
/// product plus `bias[j]`) and `logits4(row, bias, g)` (columns `4g..4g+3` at once),
/// `label_column(label)` (a row's label as a column, -1 for none), and
/// `labelled_row(out, x, labels, &c)` for kernels writing one value a row: the row of `x` that
/// block `blockIdx.x` takes, with its label's column in `c`, or null for an unused slot, whose
/// value it sets to 0.
fn row_helpers(LogitRows { width, classes, .. }: LogitRows, logits_bf16: bool) -> String {
    let logits = if logits_bf16 {
        format!(
            r#"{BF16_VALUE}typedef unsigned short logit_t;
#define LOGIT(row, j) (bf16_value((row)[j]) + bias[j])
__device__ float4 logits4(const logit_t *row, const float *bias, int g) {{
    uint2 bits = *reinterpret_cast<const uint2 *>(row + 4 * g);
    float4 b = *reinterpret_cast<const float4 *>(bias + 4 * g);
    return make_float4(__uint_as_float(bits.x << 16) + b.x, __uint_as_float(bits.x & 0xffff0000u) + b.y,
                       __uint_as_float(bits.y << 16) + b.z, __uint_as_float(bits.y & 0xffff0000u) + b.w);
}}"#
        )
    } else {
        r#"typedef float logit_t;
#define LOGIT(row, j) ((row)[j] + bias[j])
__device__ float4 logits4(const logit_t *row, const float *bias, int g) {
    float4 v = *reinterpret_cast<const float4 *>(row + 4 * g);
    float4 b = *reinterpret_cast<const float4 *>(bias + 4 * g);
    return make_float4(v.x + b.x, v.y + b.y, v.z + b.z, v.w + b.w);
}"#
        .to_string()
    };
    format!(
        r#"{WARP_REDUCTIONS}{BLOCK_REDUCTIONS}{logits}
__device__ int label_column(float label) {{
    if (label < 0.0f) return -1;
    int c = (int)label;
    if (c >= {classes}) __trap();
    return c;
}}
__device__ const logit_t *labelled_row(float *out, const logit_t *x, const float *labels, int *c) {{
    int r = blockIdx.x;
    *c = label_column(labels[r]);
    if (*c < 0) {{
        if (threadIdx.x == 0) out[r] = 0.0f;
        return nullptr;
    }}
    return x + (long long)r * {width};
}}
"#
    )
}

/// The block's maximum `m` and exponential sum `s` (relative to `m`) of a row's classes: whole
/// groups of 4, two loads a thread in flight, then the classes past them one at a time.
fn row_exponential_sum(LogitRows { width, classes, .. }: LogitRows) -> String {
    let step = BLOCK_THREADS;
    let groups = whole_groups(classes, width);
    format!(
        r#"float m = NEGATIVE_INFINITY, s = 0.0f;
    int g = threadIdx.x;
    for (; g + {step} < {groups}; g += {two}) {{
        float4 a = logits4(row, bias, g), b = logits4(row, bias, g + {step});
        add_exponentials4(&m, &s, a.x, a.y, a.z, a.w);
        add_exponentials4(&m, &s, b.x, b.y, b.z, b.w);
    }}
    for (; g < {groups}; g += {step}) {{
        float4 a = logits4(row, bias, g);
        add_exponentials4(&m, &s, a.x, a.y, a.z, a.w);
    }}
    for (int j = {tail} + threadIdx.x; j < {classes}; j += {step}) add_exponential(&m, &s, LOGIT(row, j));
    block_exponential_sum(&m, &s);"#,
        tail = VECTOR * groups,
        two = 2 * step,
    )
}
