//! A single GEMM with a large size (M, N or K) that is not a multiple of 8 runs on zero-padded
//! copies of its matrices. BERT's vocabulary (30522) makes the decoder's three GEMMs such
//! products. Run 37 timed PyTorch's bf16 GEMMs of those shapes on an H200: 3.04 ms at 30522,
//! 1.04 ms at 30528; ours took the same 3.0 ms. Run 38 padded only the leading dimensions and
//! gained nothing: the size itself must be padded. The padding is zeros, so padded K adds
//! nothing to a sum, and padded rows and columns of the output are dropped on the copy back.
use std::sync::{Arc, OnceLock};

use luminal_cudarc::driver::{CudaDevice, CudaSlice, DevicePtrMut, LaunchAsync, LaunchConfig};

use super::kernel::{int, Kernel};

/// Sizes are padded to a multiple of this (128 bytes of bf16).
const PAD: usize = 64;

/// Sizes below this are left alone: their GEMMs are small, and a copy would cost more than it
/// saves.
const MIN_PADDED: usize = 1024;

fn pad_every_gemm() -> bool {
    static PAD_EVERY_GEMM: OnceLock<bool> = OnceLock::new();
    *PAD_EVERY_GEMM.get_or_init(|| std::env::var("DROPBERT_PAD_EVERY_GEMM").is_ok_and(|v| v == "1"))
}

/// The size a GEMM runs at in place of `size`. `DROPBERT_PAD_EVERY_GEMM=1` pads every size that
/// is not a multiple of 64, so that the test fixtures, whose sizes never need it, check the
/// padded path on a GPU (`scripts/cuda_check.sh`).
pub fn padded_size(size: usize) -> usize {
    let pads = if pad_every_gemm() {
        !size.is_multiple_of(PAD)
    } else {
        !size.is_multiple_of(8) && size >= MIN_PADDED
    };
    if pads {
        size.div_ceil(PAD) * PAD
    } else {
        size
    }
}

/// A matrix as cuBLAS stores it, column-major: `vectors` runs of `len` contiguous elements,
/// `ld` elements apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub len: usize,
    pub vectors: usize,
    pub ld: usize,
}

impl Stored {
    /// A dense matrix of `len` x `vectors`.
    pub fn dense(len: usize, vectors: usize) -> Self {
        Self {
            len,
            vectors,
            ld: len,
        }
    }
}

/// The kernels copying a matrix into another of other sizes, for 2- and 4-byte elements.
#[derive(Clone, Debug)]
pub struct Padding {
    halves: Kernel,
    words: Kernel,
}

impl Padding {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            halves: Kernel::compile(device, &source("unsigned short")),
            words: Kernel::compile(device, &source("unsigned int")),
        }
    }

    /// A dense `len` x `vectors` copy of `matrix` (stored at `at`), zeros beyond its sizes.
    pub fn padded_copy(
        &self,
        matrix: Stored,
        at: u64,
        (len, vectors): (usize, usize),
        element_bytes: usize,
    ) -> CudaSlice<u8> {
        let padded = Stored::dense(len, vectors);
        let mut copy = self.buffer(padded, element_bytes);
        let to = *copy.device_ptr_mut();
        self.copy((matrix, at), (padded, to), element_bytes);
        copy
    }

    /// An unwritten dense `len` x `vectors` buffer.
    pub fn buffer(&self, matrix: Stored, element_bytes: usize) -> CudaSlice<u8> {
        let bytes = matrix.len * matrix.vectors * element_bytes;
        unsafe { self.halves.device.alloc::<u8>(bytes) }.expect("GPU allocation")
    }

    /// Writes every element of `to`: the element of `from` at the same place, or zero beyond
    /// `from`'s sizes.
    pub fn copy(&self, from: (Stored, u64), to: (Stored, u64), element_bytes: usize) {
        let kernel = match element_bytes {
            2 => &self.halves,
            4 => &self.words,
            other => unreachable!("GEMM elements are 2 or 4 bytes, not {other}"),
        };
        let ((source, from), (target, to)) = (from, to);
        let config = LaunchConfig {
            grid_dim: (
                u32::try_from(target.len.div_ceil(256)).expect("grid"),
                u32::try_from(target.vectors.min(65535)).expect("grid"),
                1,
            ),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let args = (
            to,
            from,
            int(target.len),
            int(target.vectors),
            int(target.ld),
            int(source.len),
            int(source.vectors),
            int(source.ld),
        );
        unsafe { kernel.function.clone().launch(config, args) }.expect("GEMM padding launch");
    }
}

/// Place `i` of run `v` of the target, for every run (the grid's y strides over them).
pub(super) fn source(element: &str) -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(unsigned long long to, unsigned long long from,
        int len, int vectors, int ld, int from_len, int from_vectors, int from_ld) {{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    for (int v = blockIdx.y; v < vectors; v += gridDim.y) {{
        {element} value = 0;
        if (i < from_len && v < from_vectors) value = ((const {element} *)from)[(long long)v * from_ld + i];
        (({element} *)to)[(long long)v * ld + i] = value;
    }}
}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_sizes_off_a_multiple_of_8_are_padded() {
        assert_eq!(padded_size(30522), 30528);
        assert_eq!(padded_size(768), 768);
        assert_eq!(padded_size(5120), 5120);
        assert_eq!(padded_size(1001), 1001);
        assert_eq!(padded_size(2462), 2496);
    }
}
