//! What `--matmul bf16` decides and computes without a GPU: the rounding's source (and its
//! arithmetic, mirrored in Rust for tests), how kernels store bf16 copies of their results, and
//! which products are worth rounding.
use crate::compile::cpu::AxisStrides;

/// `bf16_bits(x)`: round to nearest, ties to even, as `torch.Tensor.bfloat16()`; NaNs stay
/// (quiet) NaNs. Kernels that write a bf16 copy of a value call it.
pub const BF16_BITS: &str = r#"
__device__ unsigned short bf16_bits(float x) {
    unsigned int bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((bits >> 16) | 0x40u);
    return (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
"#;

/// `bf16_value(bits)`: the float a bf16 value stands for. Kernels that read bf16 inputs call it.
pub const BF16_VALUE: &str = r#"
__device__ float bf16_value(unsigned short bits) {
    return __uint_as_float((unsigned int)bits << 16);
}
"#;

/// Values each thread of the rounding kernel takes: 4 neighbours, one 16-byte load and one
/// 8-byte store (the last thread takes what is left one by one).
pub const ROUNDED_PER_THREAD: usize = 4;

/// A bf16 copy of a float32 buffer.
pub fn rounding_source() -> String {
    format!(
        r#"{BF16_BITS}
extern "C" __global__ void dropbert_kernel(unsigned short *out, const float *in, int n) {{
    long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i + 4 <= n) {{
        float4 v = *reinterpret_cast<const float4 *>(in + i);
        *reinterpret_cast<uint2 *>(out + i) = make_uint2(
            bf16_bits(v.x) | ((unsigned int)bf16_bits(v.y) << 16),
            bf16_bits(v.z) | ((unsigned int)bf16_bits(v.w) << 16));
    }} else {{
        for (; i < n; i++) out[i] = bf16_bits(in[i]);
    }}
}}"#
    )
}

/// How a kernel stores one of its float32 results: as float32, as bf16 only (every reader is a
/// bf16 GEMM), or both (the float32 result is read elsewhere too); the bf16 copies of `Both`
/// results come after all the kernel's other outputs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Float,
    Bf16,
    Both,
}

impl Store {
    /// The C parameter for output `o` stored this way, and for its extra bf16 copy if any.
    pub fn parameters(self, o: usize) -> (String, Option<String>) {
        match self {
            Store::Float => (format!("float *__restrict__ out{o}"), None),
            Store::Bf16 => (format!("unsigned short *__restrict__ out{o}"), None),
            Store::Both => (
                format!("float *__restrict__ out{o}"),
                Some(format!("unsigned short *__restrict__ copy{o}")),
            ),
        }
    }

    /// The C statement storing `value` at `out{o}[at]` (and `copy{o}[at]`).
    pub fn statement(self, o: usize, at: &str, value: &str) -> String {
        match self {
            Store::Float => format!("out{o}[{at}] = {value};"),
            Store::Bf16 => format!("out{o}[{at}] = bf16_bits({value});"),
            Store::Both => format!("out{o}[{at}] = {value}; copy{o}[{at}] = bf16_bits({value});"),
        }
    }

    /// The C statement storing the `float4` `value` at `out{o}[at..at + 4]` (and `copy{o}`) in
    /// one store a buffer; `at` must be a multiple of 4.
    pub fn statement4(self, o: usize, at: &str, value: &str) -> String {
        let float = format!("*reinterpret_cast<float4 *>(out{o} + {at}) = v;");
        let bf16 = |buffer: &str| {
            format!(
                "*reinterpret_cast<uint2 *>({buffer}{o} + {at}) = make_uint2(\
                 bf16_bits(v.x) | ((unsigned int)bf16_bits(v.y) << 16), \
                 bf16_bits(v.z) | ((unsigned int)bf16_bits(v.w) << 16));"
            )
        };
        let stores = match self {
            Store::Float => float,
            Store::Bf16 => bf16("out"),
            Store::Both => format!("{float} {}", bf16("copy")),
        };
        format!("{{ float4 v = {value}; {stores} }}")
    }
}

/// The buffers a kernel with `stores` writes, in the order of its parameters and outputs: for
/// each, the result it holds and whether it is bf16.
pub fn output_buffers(stores: &[Store]) -> Vec<(usize, bool)> {
    let main = stores
        .iter()
        .enumerate()
        .map(|(o, &store)| (o, store == Store::Bf16));
    let copies = stores
        .iter()
        .enumerate()
        .filter(|(_, &store)| store == Store::Both)
        .map(|(o, _)| (o, true));
    main.chain(copies).collect()
}

/// The C declaration of a kernel's outputs stored as `stores`.
pub fn output_parameters(stores: &[Store]) -> Vec<String> {
    let (main, copies): (Vec<String>, Vec<Option<String>>) = stores
        .iter()
        .enumerate()
        .map(|(o, store)| store.parameters(o))
        .unzip();
    main.into_iter()
        .chain(copies.into_iter().flatten())
        .collect()
}

/// Multiply-adds per operand element from which rounding the operands to bf16 pays. Run 11
/// (docs/perf.md), which rounded every operand in a pass of its own per GEMM, found attention's
/// products (43 to 64) losing; since most operands are written in bf16 by their producers and
/// each is rounded once for all its GEMMs, run 16 measured them gaining.
const MIN_MULTIPLY_ADDS_PER_ROUNDED_ELEMENT: usize = 32;

/// Whether a contraction does enough work per operand element to round its operands to bf16.
pub fn worth_rounding(loops: &[AxisStrides], axes: [AxisStrides; 3]) -> bool {
    let all = || loops.iter().chain(&axes);
    let multiply_adds: usize = all().map(|axis| axis.0).product();
    let read = |stride: fn(&AxisStrides) -> usize| -> usize {
        all()
            .filter(|axis| stride(axis) != 0)
            .map(|axis| axis.0)
            .product()
    };
    let elements = read(|axis| axis.1) + read(|axis| axis.2);
    multiply_adds >= MIN_MULTIPLY_ADDS_PER_ROUNDED_ELEMENT * elements
}

/// What the kernel computes for one value, for tests.
#[cfg(test)]
fn round_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        ((bits >> 16) | 0x40) as u16
    } else {
        ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_pays_for_linear_layers_and_attention_not_for_thin_products() {
        // x [32768, 768] times a weight [768, 768].
        let linear = [(32768, 768, 0, 768), (768, 0, 1, 1), (768, 1, 768, 0)];
        assert!(worth_rounding(&[], linear));
        // Attention scores: 3072 heads of [128, 64] times [64, 128] (64 per element).
        let scores = [(128, 64, 0, 128), (128, 0, 64, 1), (64, 1, 1, 0)];
        assert!(worth_rounding(&[(3072, 8192, 8192, 16384)], scores));
        // Probabilities [128, 128] times values [128, 64] (43 per element).
        let context = [(128, 128, 0, 64), (64, 0, 1, 1), (128, 1, 64, 0)];
        assert!(worth_rounding(&[(3072, 16384, 8192, 8192)], context));
        // x [4096, 16] times [16, 16] (16 per element).
        let thin = [(4096, 16, 0, 16), (16, 0, 1, 1), (16, 1, 16, 0)];
        assert!(!worth_rounding(&[], thin));
    }

    fn widen(bits: u16) -> f32 {
        f32::from_bits((bits as u32) << 16)
    }

    #[test]
    fn copies_of_results_read_as_float_too_come_last() {
        let stores = [Store::Both, Store::Float, Store::Bf16, Store::Both];
        assert_eq!(
            output_buffers(&stores),
            vec![
                (0, false),
                (1, false),
                (2, true),
                (3, false),
                (0, true),
                (3, true)
            ]
        );
        let parameters = output_parameters(&stores);
        assert_eq!(parameters.len(), 6);
        assert!(parameters[2].starts_with("unsigned short") && parameters[2].ends_with("out2"));
        assert!(parameters[5].ends_with("copy3"));
    }

    #[test]
    fn rounds_to_the_nearest_bf16_ties_to_even() {
        // bf16 keeps 8 significant bits: 1 + 2^-7 is representable, 1 + 2^-8 is the tie below it.
        assert_eq!(widen(round_to_bf16_bits(1.0)), 1.0);
        assert_eq!(widen(round_to_bf16_bits(1.0 + 2f32.powi(-8))), 1.0);
        assert_eq!(
            widen(round_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8))),
            1.0 + 2.0 * 2f32.powi(-7)
        );
        assert_eq!(
            widen(round_to_bf16_bits(1.0 + 2f32.powi(-8) + 2f32.powi(-20))),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(widen(round_to_bf16_bits(-2.5)), -2.5);
        assert_eq!(widen(round_to_bf16_bits(f32::INFINITY)), f32::INFINITY);
        assert!(widen(round_to_bf16_bits(f32::NAN)).is_nan());
        // The largest float32 rounds up past bf16's largest finite value, to infinity.
        assert_eq!(widen(round_to_bf16_bits(f32::MAX)), f32::INFINITY);
    }

    #[test]
    fn relative_rounding_error_is_at_most_half_an_ulp() {
        let mut x = 1.0e-30f32;
        while x < 1.0e30 {
            let rounded = widen(round_to_bf16_bits(x));
            assert!(((rounded - x) / x).abs() <= 2f32.powi(-8), "{x}: {rounded}");
            x *= 1.37;
        }
    }
}
