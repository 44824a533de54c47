//! [`CrossEntropy`] and [`CrossEntropyGradient`] on the GPU as block-per-row kernels
//! ([`CudaRowKernel`]), the row width and class count baked in: one pass over a row's classes,
//! four loads a thread at a time, gives their maximum and exponential sum; the gradient then
//! writes the row in a second pass, zeros in its padding. An unused slot's row (negative label)
//! reads nothing and gives 0; a label outside the classes stops the kernel (`__trap`), as the CPU
//! kernels' asserts do.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::{
    block_rows::{BLOCK_REDUCTIONS, BLOCK_THREADS},
    row_kernel::CudaRowKernel,
    warp_rows::WARP_REDUCTIONS,
};
use crate::ops::{CrossEntropy, CrossEntropyGradient, LogitRows};

/// The reductions, `label_column(label)` (a row's label as a column, -1 for none), and
/// `labelled_row(out, x, labels, &c)` for kernels writing one value a row: the row of `x` that
/// block `blockIdx.x` takes, with its label's column in `c`, or null for an unused slot, whose
/// value it sets to 0.
pub(super) fn row_helpers(LogitRows { width, classes, .. }: LogitRows) -> String {
    format!(
        r#"{WARP_REDUCTIONS}{BLOCK_REDUCTIONS}
__device__ int label_column(float label) {{
    if (label < 0.0f) return -1;
    int c = (int)label;
    if (c >= {classes}) __trap();
    return c;
}}
__device__ const float *labelled_row(float *out, const float *x, const float *labels, int *c) {{
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
        add_exponentials4(&m, &s, row[j], row[j + {step}], row[j + {two}], row[j + {last}]);
    for (; j < {classes}; j += {step}) add_exponential(&m, &s, row[j]);
    block_exponential_sum(&m, &s);"#,
        two = 2 * step,
        last = 3 * step,
        four = 4 * step,
    )
}

pub(super) fn forward_source(rows: LogitRows) -> String {
    format!(
        r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *labels, int rows) {{
    int c;
    const float *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    {sum}
    if (threadIdx.x == 0) out[blockIdx.x] = logf(s) - (row[c] - m);
}}"#,
        helpers = row_helpers(rows),
        sum = row_exponential_sum(rows.classes),
    )
}

pub(super) fn gradient_source(rows: LogitRows) -> String {
    let LogitRows { width, classes, .. } = rows;
    format!(
        r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *labels,
                                           const float *d, int rows) {{
    int r = blockIdx.x, c = label_column(labels[r]);
    long long at = (long long)r * {width};
    if (c < 0) {{
        for (int j = threadIdx.x; j < {width}; j += {BLOCK_THREADS}) out[at + j] = 0.0f;
        return;
    }}
    const float *row = x + at;
    {sum}
    float inverse = 1.0f / s, scale = d[r];
#pragma unroll 4
    for (int j = threadIdx.x; j < {classes}; j += {BLOCK_THREADS}) {{
        float target = j == c ? 1.0f : 0.0f;
        out[at + j] = (expf(row[j] - m) * inverse - target) * scale;
    }}
    for (int j = {classes} + threadIdx.x; j < {width}; j += {BLOCK_THREADS}) out[at + j] = 0.0f;
}}"#,
        helpers = row_helpers(rows),
        sum = row_exponential_sum(classes),
    )
}

pub fn cuda_cross_entropy(op: &CrossEntropy, device: &Arc<CudaDevice>) -> CudaRowKernel {
    let source = forward_source(op.0);
    CudaRowKernel::block_per_row(op.0.rows, 1, &source, "CrossEntropy", device)
}

pub fn cuda_cross_entropy_gradient(
    op: &CrossEntropyGradient,
    device: &Arc<CudaDevice>,
) -> CudaRowKernel {
    let source = gradient_source(op.0);
    CudaRowKernel::block_per_row(
        op.0.rows,
        op.0.width,
        &source,
        "CrossEntropyGradient",
        device,
    )
}
