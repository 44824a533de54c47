//! Row gathers and scatters on the GPU: [`GatherRows`], its adjoint [`ScatterAddRows`], and token
//! dropping's [`ReplaceRows`] and [`ZeroRows`]. Indexes arrive as floats, as on the CPU. A thread
//! moves one element, four neighbouring ones in a gather, or adds up one column of a run of rows
//! in a scatter. An index outside the table stops the kernel (`__trap`), as the CPU
//! kernels' asserts do.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_slice_mut, device_tensor, input_slice},
    kernel::{int, logical_len, per_element, Kernel},
    vector_access::values_at_once,
};
use crate::ops::{GatherRows, ReplaceRows, ScatterAddRows, ZeroRows};

pub(super) fn gather_source(width: usize) -> String {
    let (ty, chunk) = match values_at_once(width) {
        4 => ("float4", 4),
        _ => ("float", 1),
    };
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *table, const float *indexes,
                                           int n, int rows, int width) {{
    long long e = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * {chunk};
    if (e >= (long long)n * width) return;
    int i = (int)(e / width), c = (int)(e % width);
    int row = (int)indexes[i];
    if (row < 0 || row >= rows) __trap();
    *reinterpret_cast<{ty} *>(out + e) = *reinterpret_cast<const {ty} *>(table + (long long)row * width + c);
}}"#
    )
}

/// `out[i, c] = table[indexes[i], c]`.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGatherRows {
    op: GatherRows,
    kernel: Kernel,
}

impl CudaGatherRows {
    pub fn new(op: GatherRows, device: &Arc<CudaDevice>) -> Self {
        Self {
            kernel: Kernel::compile(device, &gather_source(op.width)),
            op,
        }
    }
}

impl Operator for CudaGatherRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let table = input_slice(&inputs[0].0, "GatherRows table");
        let indexes = input_slice(&inputs[1].0, "GatherRows indexes");
        let n = logical_len(&inputs[1].1);
        let len = n * self.op.width;
        let mut out = unsafe { self.kernel.device.alloc::<f32>(len) }.expect("GPU allocation");
        let args = (
            &mut out,
            table,
            indexes,
            int(n),
            int(self.op.rows),
            int(self.op.width),
        );
        let threads = len / values_at_once(self.op.width);
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(threads), args)
        }
        .expect("GatherRows launch");
        vec![device_tensor(out)]
    }
}

/// Rows of values a thread of the scatter adds up, one column of each. It adds a run of rows
/// bound for the same table row in a register and issues one atomic add per run: BERT's
/// token-type table has two rows, so one atomic add per value had 16384 threads queue on each
/// of its addresses at 256 x 128.
const SCATTER_RUN: usize = 32;

pub(super) fn scatter_add_source() -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *values, const float *indexes,
                                           int n, int rows, int width) {{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    int c = (int)(t % width);
    long long first = t / width * {SCATTER_RUN};
    if (first >= n) return;
    int last = (int)min(first + {SCATTER_RUN}, (long long)n);
    int current = -1;
    float sum = 0.0f;
    for (int i = (int)first; i < last; i++) {{
        int row = (int)indexes[i];
        if (row < 0 || row >= rows) __trap();
        if (row != current) {{
            if (current >= 0) atomicAdd(&out[(long long)current * width + c], sum);
            current = row;
            sum = 0.0f;
        }}
        sum += values[(long long)i * width + c];
    }}
    atomicAdd(&out[(long long)current * width + c], sum);
}}"#
    )
}

/// `out[indexes[i], c] += values[i, c]` into zeros. Float atomics: the order of the additions
/// into one row, and so its last bits, may differ from the CPU's.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaScatterAddRows {
    op: ScatterAddRows,
    kernel: Kernel,
}

impl CudaScatterAddRows {
    pub fn new(op: ScatterAddRows, device: &Arc<CudaDevice>) -> Self {
        Self {
            op,
            kernel: Kernel::compile(device, &scatter_add_source()),
        }
    }
}

impl Operator for CudaScatterAddRows {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_slice(&inputs[0].0, "ScatterAddRows values");
        let indexes = input_slice(&inputs[1].0, "ScatterAddRows indexes");
        let n = logical_len(&inputs[1].1);
        let mut out = self
            .kernel
            .device
            .alloc_zeros::<f32>(self.op.rows * self.op.width)
            .expect("GPU allocation");
        let args = (
            &mut out,
            values,
            indexes,
            int(n),
            int(self.op.rows),
            int(self.op.width),
        );
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(n.div_ceil(SCATTER_RUN) * self.op.width), args)
        }
        .expect("ScatterAddRows launch");
        vec![device_tensor(out)]
    }
}

/// Writes rows `positions[i]` of a copy of the base input (the base itself where this op holds
/// its last use): with `rows[i]` ([`ReplaceRows`]) or with zeros ([`ZeroRows`]).
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaWriteRows {
    rows: usize,
    width: usize,
    /// Where the positions are among the inputs: 2 for ReplaceRows, 1 for ZeroRows.
    positions_input: usize,
    kernel: Kernel,
}

impl CudaWriteRows {
    pub fn replace(op: ReplaceRows, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.rows, op.width, 2, "rows[e]", device)
    }

    pub fn zero(op: ZeroRows, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.rows, op.width, 1, "0.0f", device)
    }

    fn new(
        rows: usize,
        width: usize,
        positions_input: usize,
        value: &str,
        device: &Arc<CudaDevice>,
    ) -> Self {
        Self {
            rows,
            width,
            positions_input,
            kernel: Kernel::compile(device, &write_rows_source(value)),
        }
    }
}

impl Operator for CudaWriteRows {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let (positions, positions_view) = inputs.pop().expect("positions");
        let positions = input_slice(&positions, "row positions");
        let m = logical_len(&positions_view);
        let new_rows = (self.positions_input == 2).then(|| inputs.pop().expect("rows").0);
        let base = inputs.pop().expect("base").0;
        let mut out = base.cloned();
        let out_slice = device_slice_mut(&mut out).expect("the base is on the GPU");
        // ZeroRows reads no rows: any device buffer fills the unused argument.
        let rows = match &new_rows {
            Some(rows) => input_slice(rows, "ReplaceRows rows"),
            None => positions,
        };
        let args = (
            out_slice,
            rows,
            positions,
            int(m),
            int(self.rows),
            int(self.width),
        );
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(m * self.width), args)
        }
        .expect("row write launch");
        vec![out]
    }
}

/// Sets row `positions[i]` of `out` to `value` (an expression in `rows[e]`).
pub(super) fn write_rows_source(value: &str) -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *rows, const float *positions,
                                           int m, int n_rows, int width) {{
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= m * width) return;
    int i = e / width, c = e % width;
    float position = positions[i];
    int row = (int)position;
    if (position < 0.0f || row >= n_rows) __trap();
    out[row * width + c] = {value};
}}"#
    )
}
