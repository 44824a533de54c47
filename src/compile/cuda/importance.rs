//! Token dropping's importance update ([`ImportanceUpdate`]) on the GPU: one warp per prediction
//! slot, its lanes comparing 32 labels at a time with the slot's. The first slot of each
//! vocabulary id sums that id's losses in slot order in double precision, as the CPU does (lane 0
//! adds the matches of each 32 in order), and updates its entry of the table; a slot that finds
//! its label at an earlier slot stops. Each block stages the labels in shared memory a tile at a
//! time. (One thread a slot, each walking every label alone, took 0.13 ms for BERT-base's 5120
//! slots in run 70.)
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
                .launch(blocks_of(slots.div_ceil(WARPS as usize), 32 * WARPS), args)
        }
        .expect("ImportanceUpdate launch");
        vec![table]
    }
}

/// Warps a block has, each taking one slot.
const WARPS: u32 = 8;

/// Labels a block stages in shared memory at once.
const TILE: usize = 2048;

pub(super) fn source() -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *table, const float *labels, const float *losses,
                                           int slots, float beta) {{
    __shared__ float tile[{TILE}];
    int lane = threadIdx.x & 31;
    int p = blockIdx.x * {WARPS} + (threadIdx.x >> 5);
    float label = p < slots ? labels[p] : -1.0f;
    // Whether this warp still sums: its slot has a label that no earlier slot holds so far.
    bool summing = label >= 0.0f;
    double sum = 0.0;
    int count = 0;
    // Every warp walks every tile, so that all of them reach the barriers.
    for (int start = 0; start < slots; start += {TILE}) {{
        int len = min({TILE}, slots - start);
        __syncthreads();
        for (int i = threadIdx.x; i < len; i += blockDim.x) tile[i] = labels[start + i];
        __syncthreads();
        for (int chunk = 0; summing && chunk < len; chunk += 32) {{
            int i = chunk + lane;
            unsigned matches = __ballot_sync(0xffffffffu, i < len && tile[i] == label);
            if (matches == 0) continue;
            int first_match = start + chunk + __ffs(matches) - 1;
            if (first_match < p) {{
                summing = false;
                break;
            }}
            if (lane == 0) {{
                for (unsigned left = matches; left != 0; left &= left - 1) {{
                    sum += (double)losses[start + chunk + __ffs(left) - 1];
                    count++;
                }}
            }}
        }}
    }}
    if (!summing || lane != 0) return;
    float mean = (float)(sum / (double)count);
    int id = (int)label;
    table[id] = beta * table[id] + (1.0f - beta) * mean;
}}"#
    )
}
