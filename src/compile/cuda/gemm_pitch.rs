//! Matrices whose leading dimension is not a multiple of 16 bytes, copied to and from a buffer
//! whose is. BERT's vocabulary (30522) makes the decoder's logits and their gradient such a
//! matrix. Run 37 timed PyTorch's bf16 GEMMs of the decoder's three shapes on an H200: 3.0 ms at
//! 30522, 1.0 ms at 30528, and ours took the same 3.0 ms. The copy reads and writes the matrix
//! once (about 0.15 ms for the 5120 x 30522 bf16 logits), so it pays wherever the GEMM is large.
use std::sync::{Arc, OnceLock};

use luminal_cudarc::driver::{CudaDevice, CudaSlice, DevicePtrMut, LaunchAsync};

use super::kernel::{int, per_element, Kernel};

/// Elements a padded leading dimension is a multiple of (128 bytes of bf16).
const PITCH: usize = 64;

/// A matrix as cuBLAS stores it, column-major: `vectors` runs of `len` contiguous elements,
/// `ld` elements apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub len: usize,
    pub vectors: usize,
    pub ld: usize,
}

impl Stored {
    /// Whether cuBLAS reads this matrix below its full speed: more than one run, `ld` not a
    /// multiple of 16 bytes. `DROPBERT_PAD_EVERY_GEMM=1` counts every matrix of more than one
    /// run, so that the test fixtures, whose widths are all aligned, check the copies on a GPU
    /// (`scripts/cuda_check.sh`).
    pub fn misaligned(&self, element_bytes: usize) -> bool {
        self.vectors > 1 && (!(self.ld * element_bytes).is_multiple_of(16) || pad_every_gemm())
    }

    /// The leading dimension of the padded copy.
    pub fn padded_ld(&self) -> usize {
        self.len.div_ceil(PITCH) * PITCH
    }
}

fn pad_every_gemm() -> bool {
    static PAD_EVERY_GEMM: OnceLock<bool> = OnceLock::new();
    *PAD_EVERY_GEMM.get_or_init(|| std::env::var("DROPBERT_PAD_EVERY_GEMM").is_ok_and(|v| v == "1"))
}

/// The kernels copying between a matrix and its padded copy, for 2- and 4-byte elements.
#[derive(Clone, Debug)]
pub struct Repitch {
    halves: Kernel,
    words: Kernel,
}

impl Repitch {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            halves: Kernel::compile(device, &source("unsigned short")),
            words: Kernel::compile(device, &source("unsigned int")),
        }
    }

    /// A padded copy of `matrix`, stored at `at`; the padding is left unwritten (cuBLAS reads
    /// only `len` elements of each run).
    pub fn padded_copy(&self, matrix: Stored, at: u64, element_bytes: usize) -> CudaSlice<u8> {
        let mut copy = self.padded_buffer(matrix, element_bytes);
        let to = *copy.device_ptr_mut();
        self.copy(self.kernel(element_bytes), matrix, (to, matrix.padded_ld()), (at, matrix.ld));
        copy
    }

    /// An unwritten buffer of `matrix`'s padded size.
    pub fn padded_buffer(&self, matrix: Stored, element_bytes: usize) -> CudaSlice<u8> {
        let bytes = matrix.padded_ld() * matrix.vectors * element_bytes;
        unsafe { self.halves.device.alloc::<u8>(bytes) }.expect("GPU allocation")
    }

    /// Copies the padded copy at `from` back into `matrix`, stored at `to`.
    pub fn copy_back(&self, matrix: Stored, from: u64, to: u64, element_bytes: usize) {
        self.copy(
            self.kernel(element_bytes),
            matrix,
            (to, matrix.ld),
            (from, matrix.padded_ld()),
        );
    }

    fn kernel(&self, element_bytes: usize) -> &Kernel {
        match element_bytes {
            2 => &self.halves,
            4 => &self.words,
            other => unreachable!("GEMM elements are 2 or 4 bytes, not {other}"),
        }
    }

    fn copy(&self, kernel: &Kernel, matrix: Stored, to: (u64, usize), from: (u64, usize)) {
        let n = matrix.len * matrix.vectors;
        let args = (
            to.0,
            from.0,
            int(matrix.len),
            int(n),
            int(to.1),
            int(from.1),
        );
        unsafe { kernel.function.clone().launch(per_element(n), args) }
            .expect("GEMM repitch launch");
    }
}

/// Element `t` of the matrix, run `t / len`, place `t % len`, from one leading dimension to the
/// other.
pub(super) fn source(element: &str) -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(unsigned long long to, unsigned long long from, int len,
                                           int n, int to_ld, int from_ld) {{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    long long run = t / len, place = t % len;
    (({element} *)to)[run * to_ld + place] = ((const {element} *)from)[run * from_ld + place];
}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabularys_width_is_padded_to_a_multiple_of_64() {
        let logits = Stored {
            len: 30522,
            vectors: 5120,
            ld: 30522,
        };
        assert!(logits.misaligned(2));
        assert!(logits.misaligned(4));
        assert_eq!(logits.padded_ld(), 30528);
        let hidden = Stored {
            len: 768,
            vectors: 5120,
            ld: 768,
        };
        assert!(!hidden.misaligned(2));
        // A single run has no leading dimension to speak of.
        let row = Stored {
            len: 30522,
            vectors: 1,
            ld: 30522,
        };
        assert!(!row.misaligned(2));
    }
}
