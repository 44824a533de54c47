//! Token dropping's choice of kept positions ([`SelectKeptTokens`]) on the GPU: one block per
//! sequence, one thread per position. Each thread finds its position's rank in the order of
//! [`KeptTokenRule`] by counting the positions ranked before it; the positions ranked below
//! `kept` are kept, written in ascending order. The same total order as the CPU's (float keys
//! compared as `f32::total_cmp` does, NaN last, ties by position), so the same positions.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync, LaunchConfig};

use super::{
    device_buffer::{device_tensor, input_slice},
    kernel::Kernel,
};
use crate::ops::{KeptTokenRule, SelectKeptTokens};

/// The most positions one block holds.
const MAX_SEQ: usize = 1024;

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaSelectKeptTokens {
    rule: KeptTokenRule,
    kernel: Kernel,
}

impl CudaSelectKeptTokens {
    pub fn new(op: SelectKeptTokens, device: &Arc<CudaDevice>) -> Self {
        let rule = op.rule;
        assert!(
            rule.seq <= MAX_SEQ,
            "token dropping on the GPU handles sequences of up to {MAX_SEQ} tokens"
        );
        let source = kernel_source(&rule);
        Self {
            kernel: Kernel::compile(device, &source),
            rule,
        }
    }
}

/// `id == a || id == b ...` for a list of ids (`false` for none).
fn any_of(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "false".into();
    }
    ids.iter()
        .map(|id| format!("id == {id}"))
        .collect::<Vec<_>>()
        .join(" || ")
}

pub(super) fn kernel_source(rule: &KeptTokenRule) -> String {
    let (seq, kept, by_importance) = (rule.seq, rule.kept, rule.by_importance);
    let (allowed, denied) = (any_of(&rule.allow), any_of(&rule.deny));
    format!(
        r#"
#define SEQ {seq}
// Groups in rank order: allow-list ids, predicted positions, ordinary tokens ranked by
// importance, ordinary tokens ranked by the random scores, deny-list ids.
#define BY_RANDOM 3

// An int whose order is f32::total_cmp's, NaN taken as -infinity.
__device__ int total_key(float x) {{
    if (isnan(x)) x = __int_as_float(0xff800000);  // -infinity
    int bits = __float_as_int(x);
    return bits ^ ((bits >> 31) & 0x7fffffff);
}}

// Whether position k ranks before position j by `key` (higher first, then earlier).
__device__ bool before(const int *key, int k, int j) {{
    return key[k] > key[j] || (key[k] == key[j] && k < j);
}}

extern "C" __global__ void dropbert_kernel(float *out, const float *ids, const float *predicted,
                                           const float *importance, const float *random) {{
    __shared__ int tier[SEQ], by_importance[SEQ], by_random[SEQ], group[SEQ], is_kept[SEQ];
    int row = blockIdx.x, j = threadIdx.x, at = row * SEQ + j;
    int id = (int)ids[at];
    tier[j] = ({allowed}) ? 0 : predicted[at] != 0.0f ? 1 : ({denied}) ? 3 : 2;
    by_importance[j] = total_key(importance[id]);
    by_random[j] = total_key(random[at]);
    __syncthreads();

    int first_tiers = 0, ordinary = 0, ordinary_before = 0;
    for (int k = 0; k < SEQ; k++) {{
        if (tier[k] <= 1) first_tiers++;
        if (tier[k] == 2) {{
            ordinary++;
            if (before(by_importance, k, j)) ordinary_before++;
        }}
    }}
    int importance_ranks = min(max({by_importance} - first_tiers, 0), ordinary);
    int g = tier[j] == 3 ? 4 : tier[j] <= 1 ? tier[j]
          : ordinary_before < importance_ranks ? 2 : BY_RANDOM;
    group[j] = g;
    __syncthreads();

    const int *key = g == BY_RANDOM ? by_random : by_importance;
    int rank = 0;
    for (int k = 0; k < SEQ; k++) {{
        if (group[k] < g || (group[k] == g && before(key, k, j))) rank++;
    }}
    is_kept[j] = rank < {kept};
    __syncthreads();

    if (is_kept[j]) {{
        int slot = 0;
        for (int k = 0; k < j; k++) slot += is_kept[k];
        out[row * {kept} + slot] = (float)at;
    }}
}}"#
    )
}

impl Operator for CudaSelectKeptTokens {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let slice = |i: usize| input_slice(&inputs[i].0, "SelectKeptTokens input");
        let (ids, predicted, importance, random) = (slice(0), slice(1), slice(2), slice(3));
        let rows = super::kernel::logical_len(&inputs[0].1) / self.rule.seq;
        let mut out = unsafe { self.kernel.device.alloc::<f32>(rows * self.rule.kept) }
            .expect("GPU allocation");
        let config = LaunchConfig {
            grid_dim: (rows as u32, 1, 1),
            block_dim: (self.rule.seq as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let args = (&mut out, ids, predicted, importance, random);
        unsafe { self.kernel.function.clone().launch(config, args) }
            .expect("SelectKeptTokens launch");
        vec![device_tensor(out)]
    }
}
