//! Token dropping's importance update ([`ImportanceUpdate`]) on the GPU: one thread per
//! prediction slot; the first slot of each vocabulary id sums that id's losses in slot order in
//! double precision, as the CPU does, and updates its entry of the table. Each block stages the
//! labels in shared memory a tile at a time, as every thread compares its label with all of them.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{device_slice_mut, input_slice},
    kernel::{blocks_of, int, logical_len, Kernel},
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
            kernel: Kernel::compile(device, &source()),
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
                .launch(blocks_of(slots.div_ceil(THREADS as usize), THREADS), args)
        }
        .expect("ImportanceUpdate launch");
        vec![table]
    }
}

/// Threads a block has: small blocks, so that the few thousand slots of a step spread over
/// many multiprocessors.
const THREADS: u32 = 64;

/// Labels a block stages in shared memory at once.
const TILE: usize = 1024;

pub(super) fn source() -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *table, const float *labels, const float *losses,
                                           int slots, float beta) {{
    __shared__ float tile[{TILE}];
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    float label = p < slots ? labels[p] : -1.0f;
    bool first = true;
    double sum = 0.0;
    int count = 0;
    // Every thread walks every tile, so that all of them reach the barriers.
    for (int start = 0; start < slots; start += {TILE}) {{
        int len = min({TILE}, slots - start);
        __syncthreads();
        for (int i = threadIdx.x; i < len; i += blockDim.x) tile[i] = labels[start + i];
        __syncthreads();
        if (label < 0.0f) continue;
        for (int i = 0; i < len; i++) {{
            if (tile[i] != label) continue;
            int q = start + i;
            if (q < p) {{
                first = false;
            }} else {{
                sum += (double)losses[q];
                count++;
            }}
        }}
    }}
    if (label < 0.0f || !first) return;
    float mean = (float)(sum / (double)count);
    int id = (int)label;
    table[id] = beta * table[id] + (1.0f - beta) * mean;
}}"#
    )
}
