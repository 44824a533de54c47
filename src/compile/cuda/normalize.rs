//! [`Normalize`] and [`NormalizeGradient`] on the GPU as warp-per-row kernels ([`CudaRowKernel`]),
//! the width and epsilon baked in. A lane loads its share of the row once, four neighbours at a
//! time where the width allows, and computes the statistics and the result from registers.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::{
    bf16_rounding::Store,
    row_kernel::CudaRowKernel,
    vector_access::{load4, store4, values_at_once},
    warp_rows::WARP_REDUCTIONS,
};
use crate::ops::{Normalize, NormalizeGradient};

/// A loop over the lane's share of a row, four neighbours (a chunk) at a time where the width
/// allows: `body` sees the chunk `i` and its first column `j`.
fn lane_loop(width: usize, body: &str) -> String {
    let chunk = values_at_once(width);
    let per_lane = width.div_ceil(32 * chunk);
    format!(
        r#"#pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * 32 + lane) * {chunk};
        if (j >= {width}) continue;
        {body}
    }}"#
    )
}

/// Loads the lane's share of row `at` of each of `inputs` into registers (`<name>_v[i][c]`),
/// once: the kernel computes from them, where it read the row once a pass before (run 46:
/// 2.7 TB/s backward).
fn load_rows(width: usize, inputs: &[&str]) -> String {
    let chunk = values_at_once(width);
    let per_lane = width.div_ceil(32 * chunk);
    let declarations: String = inputs
        .iter()
        .map(|name| format!("    float {name}_v[{per_lane}][{chunk}];\n"))
        .collect();
    let loads: Vec<String> = inputs
        .iter()
        .map(|name| {
            if chunk == 4 {
                load4(name, "at + j", &format!("{name}_v[i]"), false)
            } else {
                format!("{name}_v[i][0] = {name}[at + j];")
            }
        })
        .collect();
    format!(
        "{declarations}    {}\n",
        lane_loop(width, &loads.join("\n        "))
    )
}

/// A loop over the lane's values in registers: `body` sees `x_v[i][c]` and the like.
fn each_value(width: usize, body: &str) -> String {
    let chunk = values_at_once(width);
    lane_loop(
        width,
        &format!("#pragma unroll\n        for (int c = 0; c < {chunk}; c++) {{ {body} }}"),
    )
}

/// The row's mean and `1 / sqrt(var + epsilon)` from `x_v` into `mean` and `inverse_std`, as
/// `crate::ops::row_statistics` computes them (the variance from the deviations).
fn statistics(width: usize, epsilon: f32) -> String {
    format!(
        r#"    float sum = 0.0f;
    {sum}
    const float mean = warp_sum(sum) / {width}.0f;
    float squares = 0.0f;
    {squares}
    const float inverse_std = 1.0f / sqrtf(warp_sum(squares) / {width}.0f + __uint_as_float(0x{epsilon:08x}u));
"#,
        sum = each_value(width, "sum += x_v[i][c];"),
        squares = each_value(width, "float d = x_v[i][c] - mean; squares += d * d;"),
        epsilon = epsilon.to_bits()
    )
}

/// Stores `value` (an expression of `i` and `c`) over the lane's columns.
fn store_row(width: usize, value: &str) -> String {
    let chunk = values_at_once(width);
    let store = if chunk == 4 {
        store4(Store::Float, "at + j", "o")
    } else {
        "out0[at + j] = o[0];".to_string()
    };
    lane_loop(
        width,
        &format!(
            "float o[{chunk}];\n        #pragma unroll\n        \
             for (int c = 0; c < {chunk}; c++) o[c] = {value};\n        {store}"
        ),
    )
}

pub(super) fn forward_source(width: usize, epsilon: f32) -> String {
    format!(
        r#"{WARP_REDUCTIONS}
extern "C" __global__ void dropbert_kernel(float *out0, const float *x, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    long long at = (long long)r * {width};
{loads}{statistics}    {store}
}}"#,
        loads = load_rows(width, &["x"]),
        statistics = statistics(width, epsilon),
        store = store_row(width, "(x_v[i][c] - mean) * inverse_std"),
    )
}

pub(super) fn gradient_source(width: usize, epsilon: f32) -> String {
    format!(
        r#"{WARP_REDUCTIONS}
extern "C" __global__ void dropbert_kernel(float *out0, const float *x, const float *dy, int rows) {{
    int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (r >= rows) return;
    long long at = (long long)r * {width};
{loads}{statistics}    float sum_dy = 0.0f, sum_dy_y = 0.0f;
    {sums}
    const float mean_dy = warp_sum(sum_dy) / {width}.0f, mean_dy_y = warp_sum(sum_dy_y) / {width}.0f;
    {store}
}}"#,
        loads = load_rows(width, &["x", "dy"]),
        statistics = statistics(width, epsilon),
        sums = each_value(
            width,
            "sum_dy += dy_v[i][c]; sum_dy_y += dy_v[i][c] * (x_v[i][c] - mean) * inverse_std;"
        ),
        store = store_row(
            width,
            "(dy_v[i][c] - mean_dy - (x_v[i][c] - mean) * inverse_std * mean_dy_y) * inverse_std"
        ),
    )
}

pub fn cuda_normalize(op: &Normalize, device: &Arc<CudaDevice>) -> CudaRowKernel {
    let source = forward_source(op.width, op.epsilon);
    CudaRowKernel::warp_per_row(op.rows, op.width, &source, "Normalize", device)
}

pub fn cuda_normalize_gradient(op: &NormalizeGradient, device: &Arc<CudaDevice>) -> CudaRowKernel {
    let source = gradient_source(op.width, op.epsilon);
    CudaRowKernel::warp_per_row(op.rows, op.width, &source, "NormalizeGradient", device)
}
