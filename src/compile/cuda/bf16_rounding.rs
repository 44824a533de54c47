//! What `--matmul bf16` decides and computes without a GPU: the rounding kernel's source (and
//! its arithmetic, mirrored in Rust for tests) and which products are worth rounding.
use crate::compile::cpu::AxisStrides;

/// Round to nearest, ties to even, as `torch.Tensor.bfloat16()`; NaNs stay (quiet) NaNs.
pub const SOURCE: &str = r#"
extern "C" __global__ void dropbert_kernel(unsigned short *out, const float *in, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned int bits = __float_as_uint(in[i]);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        out[i] = (unsigned short)((bits >> 16) | 0x40u);
    } else {
        out[i] = (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    }
}"#;

/// Multiply-adds per operand element from which rounding the operands to bf16 pays (on an H200,
/// docs/perf.md run 11: the linear layers' products, 768 and more, gain; attention's, 64, lose).
const MIN_MULTIPLY_ADDS_PER_ROUNDED_ELEMENT: usize = 256;

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
    fn bf16_rounding_pays_for_the_linear_layers_not_for_attention() {
        // x [32768, 768] times a weight [768, 768].
        let linear = [(32768, 768, 0, 768), (768, 0, 1, 1), (768, 1, 768, 0)];
        assert!(worth_rounding(&[], linear));
        // Attention scores: 3072 heads of [128, 64] times [64, 128].
        let scores = [(128, 64, 0, 128), (128, 0, 64, 1), (64, 1, 1, 0)];
        assert!(!worth_rounding(&[(3072, 8192, 8192, 16384)], scores));
    }

    fn widen(bits: u16) -> f32 {
        f32::from_bits((bits as u32) << 16)
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
