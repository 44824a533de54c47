//! [`CrossEntropy`], [`CrossEntropyGradient`] and [`LabelIsArgmax`] on the GPU
//! ([`CudaLogitRows`]): one block a row, the row width and class count baked in. One pass over a
//! row's classes, four loads a thread at a time, gives their maximum and exponential sum; the
//! gradient then writes the row in a second pass, zeros in its padding. An unused slot's row
//! (negative label) reads nothing and gives 0; a label outside the classes stops the kernel
//! (`__trap`), as the CPU kernels' asserts do.
//!
//! Under `--matmul bf16` the gradient is written in bf16 where only bf16 readers take it (the
//! decoder's two GEMMs and the bias gradient's sum), and the logits may be read in bf16 (see
//! `bf16_logits`).
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

/// A row kernel over the logits: `dropbert_kernel(outputs..., logits, labels[, d], rows)`.
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

    /// The same kernel reading its logits in bf16.
    pub fn reading_bf16_logits(&self) -> Self {
        Self::new(
            self.computes,
            self.rows,
            true,
            self.store,
            &self.kernel.device,
        )
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
        let mut ins = vec![input_address(&inputs[0].0, self.logits_bf16, what)];
        ins.extend(
            inputs[1..]
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
    match computes {
        LogitRowsKernel::Loss => format!(
            r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, const logit_t *x, const float *labels, int rows) {{
    int c;
    const logit_t *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    {sum}
    if (threadIdx.x == 0) out[blockIdx.x] = logf(s) - (LOGIT(row, c) - m);
}}"#,
            sum = row_exponential_sum(classes),
        ),
        LogitRowsKernel::Argmax => format!(
            r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, const logit_t *x, const float *labels, int rows) {{
    int c;
    const logit_t *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    float m = NEGATIVE_INFINITY;
#pragma unroll 8
    for (int j = threadIdx.x; j < {classes}; j += {BLOCK_THREADS}) m = fmaxf(m, LOGIT(row, j));
    m = block_max(m);
    if (threadIdx.x == 0) out[blockIdx.x] = LOGIT(row, c) >= m ? 1.0f : 0.0f;
}}"#
        ),
        LogitRowsKernel::Gradient => {
            let outputs = output_parameters(&[store]).join(", ");
            let zero = store.statement(0, "at + j", "0.0f");
            let value = store.statement(
                0,
                "at + j",
                "(expf(LOGIT(row, j) - m) * inverse - target) * scale",
            );
            format!(
                r#"{helpers}{BF16_BITS}
extern "C" __global__ void dropbert_kernel({outputs}, const logit_t *x, const float *labels,
                                           const float *d, int rows) {{
    int r = blockIdx.x, c = label_column(labels[r]);
    long long at = (long long)r * {width};
    if (c < 0) {{
        for (int j = threadIdx.x; j < {width}; j += {BLOCK_THREADS}) {{ {zero} }}
        return;
    }}
    const logit_t *row = x + at;
    {sum}
    float inverse = 1.0f / s, scale = d[r];
#pragma unroll 4
    for (int j = threadIdx.x; j < {classes}; j += {BLOCK_THREADS}) {{
        float target = j == c ? 1.0f : 0.0f;
        {value}
    }}
    for (int j = {classes} + threadIdx.x; j < {width}; j += {BLOCK_THREADS}) {{ {zero} }}
}}"#,
                sum = row_exponential_sum(classes),
            )
        }
    }
}

/// The reductions, the logits' type `logit_t` and `LOGIT(row, j)` (its value as a float),
/// `label_column(label)` (a row's label as a column, -1 for none), and
/// `labelled_row(out, x, labels, &c)` for kernels writing one value a row: the row of `x` that
/// block `blockIdx.x` takes, with its label's column in `c`, or null for an unused slot, whose
/// value it sets to 0.
fn row_helpers(LogitRows { width, classes, .. }: LogitRows, logits_bf16: bool) -> String {
    let logits = if logits_bf16 {
        format!("{BF16_VALUE}typedef unsigned short logit_t;\n#define LOGIT(row, j) bf16_value((row)[j])")
    } else {
        "typedef float logit_t;\n#define LOGIT(row, j) ((row)[j])".to_string()
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

/// The block's maximum `m` and exponential sum `s` (relative to `m`) of `row[0..classes]`, four
/// loads a thread at a time.
fn row_exponential_sum(classes: usize) -> String {
    let step = BLOCK_THREADS;
    format!(
        r#"float m = NEGATIVE_INFINITY, s = 0.0f;
    int j = threadIdx.x;
    for (; j + {last} < {classes}; j += {four})
        add_exponentials4(&m, &s, LOGIT(row, j), LOGIT(row, j + {step}), LOGIT(row, j + {two}),
                          LOGIT(row, j + {last}));
    for (; j < {classes}; j += {step}) add_exponential(&m, &s, LOGIT(row, j));
    block_exponential_sum(&m, &s);"#,
        two = 2 * step,
        last = 3 * step,
        four = 4 * step,
    )
}
