//! [`LabelIsArgmax`] on the GPU as a block-per-row kernel ([`CudaRowKernel`]), the row width and
//! class count baked in: the maximum of the row's classes over the block, then one compare with
//! the label's logit.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::{block_rows::BLOCK_THREADS, cross_entropy::row_helpers, row_kernel::CudaRowKernel};
use crate::ops::{LabelIsArgmax, LogitRows};

pub(super) fn source(rows: LogitRows) -> String {
    format!(
        r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *labels, int rows) {{
    int c;
    const float *row = labelled_row(out, x, labels, &c);
    if (row == nullptr) return;
    float m = NEGATIVE_INFINITY;
#pragma unroll 8
    for (int j = threadIdx.x; j < {classes}; j += {BLOCK_THREADS}) m = fmaxf(m, row[j]);
    m = block_max(m);
    if (threadIdx.x == 0) out[blockIdx.x] = row[c] >= m ? 1.0f : 0.0f;
}}"#,
        helpers = row_helpers(rows),
        classes = rows.classes,
    )
}

pub fn cuda_label_is_argmax(op: &LabelIsArgmax, device: &Arc<CudaDevice>) -> CudaRowKernel {
    CudaRowKernel::block_per_row(op.0.rows, 1, &source(op.0), "LabelIsArgmax", device)
}
