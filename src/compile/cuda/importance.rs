//! Token dropping's importance update ([`ImportanceUpdate`]) on the GPU: one thread per
//! prediction slot; the first slot of each vocabulary id sums that id's losses in slot order in
//! double precision, as the CPU does, and updates its entry of the table.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_slice_mut, input_slice},
    kernel::{int, logical_len, per_element, Kernel},
};
use crate::ops::ImportanceUpdate;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaImportanceUpdate {
    beta: f32,
    kernel: Kernel,
}

impl CudaImportanceUpdate {
    pub fn new(op: ImportanceUpdate, device: &Arc<CudaDevice>) -> Self {
        Self {
            beta: op.beta,
            kernel: Kernel::compile(device, SOURCE),
        }
    }
}

impl Operator for CudaImportanceUpdate {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let losses = inputs.pop().expect("losses").0;
        let (labels, labels_view) = inputs.pop().expect("labels");
        let (losses, labels) = (
            input_slice(&losses, "ImportanceUpdate losses"),
            input_slice(&labels, "ImportanceUpdate labels"),
        );
        let slots = logical_len(&labels_view);
        let mut table = inputs.pop().expect("table").0.cloned();
        let table_slice = device_slice_mut(&mut table).expect("the table is on the GPU");
        let args = (table_slice, labels, losses, int(slots), self.beta);
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(slots), args)
        }
        .expect("ImportanceUpdate launch");
        vec![table]
    }
}

pub(super) const SOURCE: &str = r#"
extern "C" __global__ void dropbert_kernel(float *table, const float *labels, const float *losses,
                                           int slots, float beta) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= slots) return;
    float label = labels[p];
    if (label < 0.0f) return;
    for (int q = 0; q < p; q++) {
        if (labels[q] == label) return;
    }
    double sum = 0.0;
    int count = 0;
    for (int q = p; q < slots; q++) {
        if (labels[q] == label) {
            sum += (double)losses[q];
            count++;
        }
    }
    float mean = (float)(sum / (double)count);
    int id = (int)label;
    table[id] = beta * table[id] + (1.0f - beta) * mean;
}"#;
