//! [`PickColumns`] (the label's logit of each row) and its adjoint [`PlaceColumns`] on the GPU:
//! one thread per row; a negative column (an unpredicted slot's label) reads or writes nothing.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::{int, logical_len, per_element, Kernel},
};
use crate::ops::{PickColumns, PlaceColumns};

/// One of the two column ops: both take `(values, columns)` and differ in one statement.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaColumns {
    width: usize,
    /// PickColumns gives one value per row; PlaceColumns a zeroed row of `width` per row.
    picks: bool,
    kernel: Kernel,
}

impl CudaColumns {
    pub fn pick(op: PickColumns, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.width, true, PICK, device)
    }

    pub fn place(op: PlaceColumns, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.width, false, PLACE, device)
    }

    fn new(width: usize, picks: bool, statement: &str, device: &Arc<CudaDevice>) -> Self {
        Self {
            width,
            picks,
            kernel: Kernel::compile(device, &columns_source(statement)),
        }
    }
}

impl Operator for CudaColumns {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_slice(&inputs[0].0, "column op values");
        let columns = input_slice(&inputs[1].0, "column op columns");
        let n = logical_len(&inputs[1].1);
        let len = if self.picks { n } else { n * self.width };
        let mut out = self
            .kernel
            .device
            .alloc_zeros::<f32>(len)
            .expect("GPU allocation");
        let args = (&mut out, values, columns, int(n), int(self.width));
        unsafe { self.kernel.function.clone().launch(per_element(n), args) }
            .expect("column op launch");
        vec![device_tensor(out)]
    }
}

pub(super) const PICK: &str = "out[row] = column < 0.0f ? 0.0f : values[row * width + c];";
pub(super) const PLACE: &str = "if (column >= 0.0f) out[row * width + c] = values[row];";

/// One thread per row: reads the row's column, then runs `statement`.
pub(super) fn columns_source(statement: &str) -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *values, const float *columns,
                                           int n, int width) {{
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    float column = columns[row];
    int c = (int)column;
    if (column >= 0.0f && c >= width) __trap();
    {statement}
}}"#
    )
}
