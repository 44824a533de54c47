//! [`AttentionProbabilities`] and its gradient on the GPU: a warp a row of scores, held in
//! registers between the max, the sum and the output, the dropout mask drawn in the kernel by the
//! CPU's Philox (`dropout_mask::philox_source`) so that no mask is stored. Where the row length
//! is a multiple of 8, each lane loads and stores 8 neighbouring values at once and draws their
//! mask values from one Philox counter. A row shorter than one chunk a lane (under 256 keys) takes
//! a group of lanes rather than the warp, so that no lane idles (run 46: at 64 keys, half of
//! them did). A group whose row fills one load a lane takes several rows, their loads issued
//! before any is used, so that enough bytes are in flight to approach the memory bandwidth. The
//! results can be stored in bf16 for the GEMMs that read them ([`Store`]).
use std::{ffi::c_void, sync::Arc};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, DeviceRepr, LaunchAsync, LaunchConfig};

use super::{
    bf16_operands::input_addresses,
    bf16_products::more_bf16_inputs,
    bf16_rounding::{output_buffers, output_parameters, Store, BF16_BITS, BF16_VALUE},
    dropout_mask::{philox_key_of, philox_source, RANDOM_BITS_SOURCE},
    fused_elementwise::OutputBuffer,
    kernel::{float_literal, int, Kernel},
    vector_access::{load4, store4},
    warp_rows::WARP_REDUCTIONS,
};
use crate::ops::{
    AttentionProbabilities, AttentionProbabilitiesGradient, AttentionRows, ELEMENTS_PER_COUNTER,
};

/// Warps a block has.
const WARPS_PER_BLOCK: u32 = 8;

/// Lanes a row takes: the warp, or for a row shorter than one chunk a lane the fewest lanes (a
/// power of two) that hold it in one chunk each.
fn lanes_per_row(keys: usize) -> usize {
    keys.div_ceil(chunk(keys)).next_power_of_two().min(32)
}

/// Rows a group of lanes takes, one after another: 4 where a row is one chunk a lane, so that a
/// warp has as many bytes in flight as one with a row of 512 keys. With one, rows of 128 keys
/// read 1.6-2.1 TB/s (run 41).
fn rows_per_group(keys: usize) -> usize {
    if keys.div_ceil(lanes_per_row(keys) * chunk(keys)) == 1 {
        4
    } else {
        1
    }
}

/// Rows a warp takes.
fn rows_per_warp(keys: usize) -> usize {
    32 / lanes_per_row(keys) * rows_per_group(keys)
}

/// Neighbouring values a lane takes at once: 8 (one Philox counter's values, two vector loads)
/// where rows keep that alignment.
fn chunk(keys: usize) -> usize {
    if keys.is_multiple_of(ELEMENTS_PER_COUNTER) {
        ELEMENTS_PER_COUNTER
    } else {
        1
    }
}

/// The inputs a kernel can read in bf16 (products cuBLAS wrote in bf16, see `bf16_products`):
/// the scores, and the probabilities' gradient.
fn can_read_bf16(gradient: bool, input: u8) -> bool {
    input == AttentionRows::SCORES
        || (gradient && input == AttentionProbabilitiesGradient::PROBABILITIES_GRADIENT)
}

/// The kernel of [`AttentionProbabilities`] (`gradient` false) or of its gradient, for `rows`,
/// storing its result as `store` says and reading the inputs `bf16_inputs` in bf16.
pub(super) fn source(
    rows: &AttentionRows,
    gradient: bool,
    store: Store,
    bf16_inputs: &[u8],
) -> String {
    let keys = rows.keys;
    let chunk = chunk(keys);
    let lanes = lanes_per_row(keys);
    let groups = 32 / lanes;
    let per_lane = keys.div_ceil(lanes * chunk);
    let rows_per_group = rows_per_group(keys);
    let names: &[&str] = if gradient {
        &["s", "bias", "dp"]
    } else {
        &["s", "bias"]
    };
    // The bias row (read as `b`) is always float32.
    let is_bf16 = |name: &str| {
        names
            .iter()
            .position(|&n| n == name)
            .is_some_and(|order| bf16_inputs.contains(&(order as u8)))
    };
    let inputs: Vec<String> = names
        .iter()
        .map(|&name| {
            let ty = if is_bf16(name) {
                "unsigned short"
            } else {
                "float"
            };
            format!("const {ty} *__restrict__ {name}")
        })
        .collect();
    let inputs = inputs.join(", ");
    let load = |name: &str, at: &str, into: &str| {
        if chunk == 8 {
            format!(
                "{} {}",
                load4(name, at, into, is_bf16(name)),
                load4(
                    name,
                    &format!("{at} + 4"),
                    &format!("({into} + 4)"),
                    is_bf16(name)
                )
            )
        } else if is_bf16(name) {
            format!("{into}[0] = bf16_value({name}[{at}]);")
        } else {
            format!("{into}[0] = {name}[{at}];")
        }
    };
    // The mask value of the chunk's value `c`: 16 bits of counter `e / 8`.
    let mask = match rows.mask() {
        Some(mask) => {
            let slot = if chunk == 8 { "c" } else { "(int)(e & 7)" };
            format!(
                "uint4 w = philox((unsigned int)(e >> 3), {stream}u, key0, key1); \
                 _Pragma(\"unroll\") for (int c = 0; c < {chunk}; c++) \
                 m[c] = random_bits(w, {slot}) < {threshold}u ? {scale} : 0.0f;",
                stream = mask.stream,
                threshold = mask.threshold(),
                scale = float_literal(mask.scale()),
            )
        }
        None => format!("for (int c = 0; c < {chunk}; c++) m[c] = 1.0f;"),
    };
    let store_chunk = |value: &str| {
        if chunk == 8 {
            format!(
                "{} {}",
                store4(store, "e", value),
                store4(store, "e + 4", &format!("({value} + 4)"))
            )
        } else {
            store.statement(0, "e", &format!("{value}[0]"))
        }
    };
    let finish = if gradient {
        format!(
            r#"
    float g[{per_lane}][{chunk}], dot = 0.0f;
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * {lanes} + lane) * {chunk};
        if (j >= {keys}) continue;
        long long e = row + j;
        float m[{chunk}];
        {mask}
        #pragma unroll
        for (int c = 0; c < {chunk}; c++) {{
            g[i][c] = dv[k][i][c] * m[c];
            dot += y[i][c] * g[i][c];
        }}
    }}
    dot = group_sum(dot, {lanes});
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * {lanes} + lane) * {chunk};
        if (j >= {keys} || !live) continue;
        long long e = row + j;
        float ds[{chunk}];
        #pragma unroll
        for (int c = 0; c < {chunk}; c++) ds[c] = (y[i][c] * (g[i][c] - dot)) * {scale};
        {store}
    }}"#,
            scale = float_literal(rows.scale),
            store = store_chunk("ds"),
        )
    } else {
        format!(
            r#"
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * {lanes} + lane) * {chunk};
        if (j >= {keys} || !live) continue;
        long long e = row + j;
        float p[{chunk}], m[{chunk}];
        {mask}
        #pragma unroll
        for (int c = 0; c < {chunk}; c++) p[c] = y[i][c] * m[c];
        {store}
    }}"#,
            store = store_chunk("p"),
        )
    };
    format!(
        r#"{WARP_REDUCTIONS}{BF16_BITS}{BF16_VALUE}{philox}{RANDOM_BITS_SOURCE}
extern "C" __global__ void dropbert_kernel({outputs}, {inputs}, int rows,
                                           unsigned int key0, unsigned int key1) {{
    // The warp's groups of lanes take neighbouring rows, so that a load of the warp reads one
    // stretch of memory.
    int first = ((blockIdx.x * blockDim.x + threadIdx.x) >> 5) * {rows_per_warp} + (threadIdx.x & 31) / {lanes};
    int lane = threadIdx.x & {lane_bits};
    // Every row's loads first.
    float sv[{rows_per_group}][{per_lane}][{chunk}];{gradient_loads_declared}
    #pragma unroll
    for (int k = 0; k < {rows_per_group}; k++) {{
        long long row = (long long)min(first + k * {groups}, rows - 1) * {keys};
        #pragma unroll
        for (int i = 0; i < {per_lane}; i++) {{
            int j = (i * {lanes} + lane) * {chunk};
            long long e = row + j;
            if (j < {keys}) {{
                {load_s}{gradient_loads}
            }}
        }}
    }}
    #pragma unroll
    for (int k = 0; k < {rows_per_group}; k++) {{
    // A group past the last row computes that row again and stores nothing: the lanes of other
    // groups still need it in the reductions' shuffles.
    int r = min(first + k * {groups}, rows - 1);
    bool live = first + k * {groups} < rows;
    long long row = (long long)r * {keys};
    const float *b = bias + (long long)(r / {rows_per_sequence}) * {keys};
    float y[{per_lane}][{chunk}];
    float max = __int_as_float(0xff800000);
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * {lanes} + lane) * {chunk};
        float w[{chunk}];
        if (j < {keys}) {{
            {load_b}
            #pragma unroll
            for (int c = 0; c < {chunk}; c++) {{
                y[i][c] = sv[k][i][c] * {scale} + w[c];
                max = fmaxf(max, y[i][c]);
            }}
        }}
    }}
    max = group_max(max, {lanes});
    float sum = 0.0f;
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++) {{
        int j = (i * {lanes} + lane) * {chunk};
        #pragma unroll
        for (int c = 0; c < {chunk}; c++) {{
            // The hardware's exp2 (relative error about 1e-7 here, far inside parity's 1e-4):
            // libdevice's expf took 4 more instructions a value, and the kernel is bound by its
            // instructions at 512 keys (run 49).
            y[i][c] = j < {keys} ? __expf(y[i][c] - max) : 0.0f;
            sum += y[i][c];
        }}
    }}
    float inverse = 1.0f / group_sum(sum, {lanes});
    #pragma unroll
    for (int i = 0; i < {per_lane}; i++)
        #pragma unroll
        for (int c = 0; c < {chunk}; c++) y[i][c] *= inverse;
{finish}
    }}
}}"#,
        philox = philox_source(),
        lane_bits = lanes - 1,
        rows_per_warp = rows_per_group * groups,
        outputs = output_parameters(&[store]).join(", "),
        rows_per_sequence = rows.rows_per_sequence,
        load_s = load("s", "e", "sv[k][i]"),
        load_b = load("b", "j", "w"),
        gradient_loads_declared = if gradient {
            format!("\n    float dv[{rows_per_group}][{per_lane}][{chunk}];")
        } else {
            String::new()
        },
        gradient_loads = if gradient {
            format!("\n                {}", load("dp", "e", "dv[k][i]"))
        } else {
            String::new()
        },
        scale = float_literal(rows.scale),
    )
}

/// [`AttentionProbabilities`] or its gradient: a warp a row.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaAttentionProbabilities {
    rows: AttentionRows,
    gradient: bool,
    store: Store,
    bf16_inputs: Vec<u8>,
    kernel: Kernel,
}

impl CudaAttentionProbabilities {
    fn new(
        rows: AttentionRows,
        gradient: bool,
        store: Store,
        bf16_inputs: Vec<u8>,
        device: &Arc<CudaDevice>,
    ) -> Self {
        u32::try_from(rows.len().div_ceil(ELEMENTS_PER_COUNTER))
            .expect("masks of under 2^34 values");
        let source = source(&rows, gradient, store, &bf16_inputs);
        Self {
            rows,
            gradient,
            store,
            bf16_inputs,
            kernel: Kernel::compile(device, &source),
        }
    }

    pub fn forward(op: &AttentionProbabilities, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.0, false, Store::Float, vec![], device)
    }

    pub fn gradient(op: &AttentionProbabilitiesGradient, device: &Arc<CudaDevice>) -> Self {
        Self::new(op.0, true, Store::Float, vec![], device)
    }

    /// The same kernel storing its result as `store` says.
    pub fn storing(&self, store: Store) -> Self {
        let inputs = self.bf16_inputs.clone();
        Self::new(self.rows, self.gradient, store, inputs, &self.kernel.device)
    }

    /// The same kernel reading `inputs` in bf16 too, if it can read them so.
    pub fn reading_bf16(&self, inputs: &[u8]) -> Option<Self> {
        let all = more_bf16_inputs(&self.bf16_inputs, inputs, |i| {
            can_read_bf16(self.gradient, i)
        })?;
        Some(Self::new(
            self.rows,
            self.gradient,
            self.store,
            all,
            &self.kernel.device,
        ))
    }

    fn name(&self) -> &'static str {
        if self.gradient {
            "AttentionProbabilitiesGradient"
        } else {
            "AttentionProbabilities"
        }
    }

    /// The input that holds the random key, read on the host, if the op draws a mask.
    fn key_input(&self) -> Option<u8> {
        if self.gradient {
            AttentionProbabilitiesGradient(self.rows).key_input()
        } else {
            AttentionProbabilities(self.rows).key_input()
        }
    }
}

impl Operator for CudaAttentionProbabilities {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let [key0, key1] = self
            .key_input()
            .map_or([0, 0], |input| philox_key_of(&inputs[input as usize].0));
        let device = &self.kernel.device;
        let len = self.rows.len();
        let outs: Vec<OutputBuffer> = output_buffers(&[self.store])
            .into_iter()
            .map(|(_, bf16)| OutputBuffer::new(device, bf16, len))
            .collect();
        let read = if self.gradient { 3 } else { 2 };
        let ins = input_addresses(&inputs[..read], &self.bf16_inputs, self.name());
        let rows = int(self.rows.rows);
        // The parameters point into `outs`, `ins`, `rows` and the key, which outlive the launch.
        let mut parameters: Vec<*mut c_void> = outs
            .iter()
            .map(OutputBuffer::parameter)
            .chain(ins.iter().map(|input| input.as_kernel_param()))
            .chain([
                rows.as_kernel_param(),
                key0.as_kernel_param(),
                key1.as_kernel_param(),
            ])
            .collect();
        let config = LaunchConfig {
            grid_dim: (
                u32::try_from(
                    self.rows
                        .rows
                        .div_ceil(WARPS_PER_BLOCK as usize * rows_per_warp(self.rows.keys)),
                )
                .expect("grid")
                .max(1),
                1,
                1,
            ),
            block_dim: (32 * WARPS_PER_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { self.kernel.function.clone().launch(config, &mut parameters) }
            .unwrap_or_else(|e| panic!("{} launch: {e:?}", self.name()));
        outs.into_iter().map(OutputBuffer::tensor).collect()
    }
}
