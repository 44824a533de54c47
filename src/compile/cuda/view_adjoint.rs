//! [`ViewAdjoint`] on the GPU: each logical element is added into the buffer element its view
//! reads, with the view's index and validity expressions compiled into the kernel. Atomic adds,
//! since a broadcast view reads one element many times.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::{int, per_element, Kernel},
    view_expression::view_expressions,
};
use crate::ops::ViewAdjoint;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaViewAdjoint {
    physical_len: usize,
    kernel: Kernel,
}

impl CudaViewAdjoint {
    pub fn new(op: ViewAdjoint, device: &Arc<CudaDevice>) -> Self {
        Self {
            physical_len: op.physical_len,
            kernel: Kernel::compile(device, &view_adjoint_source(&op.view)),
        }
    }
}

impl Operator for CudaViewAdjoint {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = input_slice(&inputs[0].0, "ViewAdjoint values");
        let n = inputs[0]
            .1
            .n_elements()
            .to_usize()
            .expect("dropbert graphs have static shapes");
        let mut out = self
            .kernel
            .device
            .alloc_zeros::<f32>(self.physical_len)
            .expect("GPU allocation");
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(n), (&mut out, values, int(n)))
        }
        .expect("ViewAdjoint launch");
        vec![device_tensor(out)]
    }
}

pub(super) fn view_adjoint_source(view: &ShapeTracker) -> String {
    let (index, valid) = view_expressions(view);
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *values, int n) {{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (({valid}) != 0) atomicAdd(&out[{index}], values[i]);
}}"#
    )
}
