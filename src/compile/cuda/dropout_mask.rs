//! Dropout masks ([`DropoutMask`]) drawn on the GPU: one thread per Philox counter, writing its
//! eight mask values, or (for masks only fused elementwise kernels read, see
//! `packed_dropout_masks`) one thread per 32-bit word of a mask packed one bit a value. The key
//! is read on the host (the compiler wires the op to the host input the trainer feeds) and passed
//! as kernel arguments, so no mask crosses the bus. The kernel's source is generated from the
//! constants of [`philox4x32`](crate::ops::philox4x32), and its round is that function's,
//! statement for statement: the GPU draws the CPU's masks bit for bit.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{CudaDevice, LaunchAsync};

use super::{
    device_buffer::{copy_to_host, device_tensor},
    kernel::{int, per_element, Kernel},
    packed_dropout_masks::{mask_bits_tensor, VALUES_PER_WORD},
};
use crate::ops::{
    key_from_values, philox_key, DropoutMask, ELEMENTS_PER_COUNTER, PHILOX_KEY_STEPS,
    PHILOX_MULTIPLIERS, PHILOX_ROUNDS,
};

#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaDropoutMask {
    op: DropoutMask,
    /// Whether the mask is written packed, a bit a value.
    packed: bool,
    kernel: Kernel,
}

impl CudaDropoutMask {
    pub fn new(op: DropoutMask, device: &Arc<CudaDevice>) -> Self {
        Self {
            op,
            packed: false,
            kernel: Kernel::compile(device, &source()),
        }
    }

    /// The same mask, written a bit a value.
    pub fn packed(&self) -> Self {
        Self {
            op: self.op.clone(),
            packed: true,
            kernel: Kernel::compile(&self.kernel.device, &packed_source()),
        }
    }

    pub fn op(&self) -> &DropoutMask {
        &self.op
    }
}

/// The Philox key words of a kernel's random key input (its values copied to the host).
pub(super) fn philox_key_of(input: &InputTensor<'_>) -> [u32; 2] {
    let values = copy_to_host(input.borrowed()).expect("the random key is f32 values");
    philox_key(key_from_values(&values))
}

impl Operator for CudaDropoutMask {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let [key0, key1] = philox_key_of(&inputs[DropoutMask::KEY as usize].0);
        let (len, stream, threshold) = (self.op.len, self.op.stream, self.op.threshold());
        let function = self.kernel.function.clone();
        if self.packed {
            let words = len.div_ceil(VALUES_PER_WORD);
            // Every word is written.
            let mut out =
                unsafe { self.kernel.device.alloc::<u32>(words) }.expect("GPU allocation");
            let args = (&mut out, int(len), stream, key0, key1, threshold);
            unsafe { function.launch(per_element(words), args) }.expect("DropoutMask launch");
            return vec![mask_bits_tensor(out)];
        }
        let mut out = unsafe { self.kernel.device.alloc::<f32>(len) }.expect("GPU allocation");
        let args = (
            &mut out,
            int(len),
            stream,
            key0,
            key1,
            threshold,
            self.op.scale(),
        );
        let counters = len.div_ceil(ELEMENTS_PER_COUNTER);
        unsafe { function.launch(per_element(counters), args) }.expect("DropoutMask launch");
        vec![device_tensor(out)]
    }
}

/// `philox(c0, stream, key0, key1)`: the four words of Philox4x32-10 of counter `[c0, stream, 0, 0]`,
/// generated from the constants of [`philox4x32`](crate::ops::philox4x32) with its round
/// statement for statement. Kernels that draw dropout masks call it.
pub(super) fn philox_source() -> String {
    let [m0, m1] = PHILOX_MULTIPLIERS;
    let [w0, w1] = PHILOX_KEY_STEPS;
    format!(
        r#"
__device__ uint4 philox(unsigned int c0, unsigned int stream, unsigned int k0, unsigned int k1) {{
    unsigned int c1 = stream, c2 = 0u, c3 = 0u;
    for (int round = 0; round < {PHILOX_ROUNDS}; round++) {{
        if (round > 0) {{
            k0 += {w0}u;
            k1 += {w1}u;
        }}
        unsigned int hi0 = __umulhi({m0}u, c0), lo0 = {m0}u * c0;
        unsigned int hi1 = __umulhi({m1}u, c2), lo1 = {m1}u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }}
    return make_uint4(c0, c1, c2, c3);
}}
"#
    )
}

/// `random_bits(w, slot)`: the 16 random bits of value `slot` (0 to 7) of a counter's words, as
/// [`random_bits`](crate::ops::random_bits) reads them.
pub(super) const RANDOM_BITS_SOURCE: &str = r#"
__device__ unsigned int random_bits(uint4 w, int slot) {
    unsigned int word = slot < 4 ? (slot < 2 ? w.x : w.y) : (slot < 6 ? w.z : w.w);
    return (word >> (16 * (slot & 1))) & 0xffffu;
}
"#;

/// The kernel: Philox4x32 of counter `[thread, stream, 0, 0]`, its eight halves compared with
/// the threshold. Values `8t..8t + 8` are 32-byte aligned (device buffers are), so a full group
/// is two vector stores.
pub(super) fn source() -> String {
    assert_eq!(
        ELEMENTS_PER_COUNTER, 8,
        "the kernel stores two float4 per counter"
    );
    format!(
        r#"{philox}{RANDOM_BITS_SOURCE}
extern "C" __global__ void dropbert_kernel(float *out, int len, unsigned int stream,
                                           unsigned int key0, unsigned int key1,
                                           unsigned int threshold, float scale) {{
    int block = blockIdx.x * blockDim.x + threadIdx.x;
    long long first = (long long)block * 8;
    if (first >= len) return;
    uint4 words = philox((unsigned int)block, stream, key0, key1);
    float v[8];
    #pragma unroll
    for (int slot = 0; slot < 8; slot++) v[slot] = random_bits(words, slot) < threshold ? scale : 0.0f;
    if (first + 8 <= len) {{
        reinterpret_cast<float4 *>(out)[2 * block] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4 *>(out)[2 * block + 1] = make_float4(v[4], v[5], v[6], v[7]);
    }} else {{
        for (int slot = 0; first + slot < len; slot++) out[first + slot] = v[slot];
    }}
}}"#,
        philox = philox_source()
    )
}

/// The packed kernel: word `w` holds values `32w..32w + 32`, value `v` in bit `v % 32`, drawn from
/// the same Philox words as [`source`]'s: the 4 counters `4w..4w + 4`, 8 values each. Bits past
/// the mask's end are left clear.
pub(super) fn packed_source() -> String {
    assert_eq!(
        VALUES_PER_WORD,
        4 * ELEMENTS_PER_COUNTER,
        "a word takes 4 counters' values"
    );
    format!(
        r#"{philox}{RANDOM_BITS_SOURCE}
extern "C" __global__ void dropbert_kernel(unsigned int *out, int len, unsigned int stream,
                                           unsigned int key0, unsigned int key1,
                                           unsigned int threshold) {{
    int word = blockIdx.x * blockDim.x + threadIdx.x;
    if ((long long)word * 32 >= len) return;
    unsigned int bits = 0u;
    for (int c = 0; c < 4; c++) {{
        int first = word * 32 + c * 8;
        if (first >= len) break;
        uint4 w = philox((unsigned int)(word * 4 + c), stream, key0, key1);
        unsigned int kept = 0u;
        #pragma unroll
        for (int slot = 0; slot < 8; slot++) kept |= (random_bits(w, slot) < threshold ? 1u : 0u) << slot;
        // The last counter's values past the end.
        unsigned int valid = len - first >= 8 ? 0xffu : (1u << (len - first)) - 1u;
        bits |= (kept & valid) << (8 * c);
    }}
    out[word] = bits;
}}"#,
        philox = philox_source()
    )
}
