//! `--matmul bf16`: each GEMM's operands are rounded to bf16 in memory before cuBLAS reads them,
//! and the product is accumulated and written in float32, as PyTorch's bf16 autocast does for
//! a matmul. cuBLAS's own bf16 mode for float32 operands (`CUBLAS_COMPUTE_32F_FAST_16BF`) ran no
//! faster than TF32 on an H200 (docs/perf.md, run 11): the tensor cores reach their bf16 rate only
//! from bf16 in memory. The weights (the master copies), activations and optimizer state stay
//! float32; only the copies a GEMM reads are bf16.
use std::sync::Arc;

use luminal_cudarc::driver::{CudaDevice, CudaSlice, DeviceSlice, LaunchAsync};

use super::kernel::{int, per_element, Kernel};

/// Round to nearest, ties to even, as `torch.Tensor.bfloat16()`; NaNs stay (quiet) NaNs.
const SOURCE: &str = r#"
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

/// The rounding kernel, compiled once per device.
#[derive(Debug, Clone)]
pub struct Bf16Rounding {
    kernel: Kernel,
}

impl Bf16Rounding {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            kernel: Kernel::compile(device, SOURCE),
        }
    }

    /// A bf16 copy of the whole of `buffer`, so that an operand's view (offsets and strides in
    /// elements) reads the copy as it reads the buffer.
    pub fn round(&self, buffer: &CudaSlice<f32>) -> CudaSlice<u16> {
        let len = buffer.len();
        // Every element is written.
        let mut rounded = unsafe { self.kernel.device.alloc::<u16>(len) }.expect("GPU allocation");
        let args = (&mut rounded, buffer, int(len));
        unsafe { self.kernel.function.clone().launch(per_element(len), args) }
            .expect("bf16 rounding launch");
        rounded
    }
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

    #[test]
    fn nvrtc_compiles_the_kernel() {
        super::super::kernel::ptx(SOURCE);
    }
}
