//! One cuBLAS call for a plan with more than one loop. Attention's products loop over the
//! sequences and the heads, and query, key and value are laid out [batch, seq, head, dim], so no
//! single stride steps through both loops. Run 30's profile found the 12 per-head strided calls
//! of batch 256 taking 105 us a product at BERT-base's 256 x 128. Here a kernel writes each
//! product's operand and output addresses, and one pointer-array batched GEMM
//! (`cublasGemmBatchedEx`) runs them all.
use std::sync::Arc;

use luminal_cudarc::driver::{CudaDevice, CudaSlice, DevicePtr, LaunchAsync};

use super::kernel::{int, per_element, Kernel};
use crate::compile::cpu::AxisStrides;

/// The address kernel of a plan's loops, and how many products they hold.
#[derive(Clone, Debug)]
pub struct ProductAddresses {
    kernel: Kernel,
    products: usize,
}

/// Device addresses of every product's `a`, `b` and output, in three arrays of `products`.
pub struct AddressArrays {
    pub buffer: CudaSlice<u64>,
    pub products: usize,
}

impl AddressArrays {
    /// The first address of the array of `a` (0), `b` (1) or the output (2).
    pub fn array(&self, which: u64) -> u64 {
        *self.buffer.device_ptr() + which * self.products as u64 * 8
    }
}

impl ProductAddresses {
    /// `None` where the loops need no more than one strided batched call.
    pub fn for_loops(device: &Arc<CudaDevice>, loops: &[AxisStrides]) -> Option<Self> {
        (loops.len() > 1).then(|| Self {
            kernel: Kernel::compile(device, &source(loops)),
            products: loops.iter().map(|axis| axis.0).product(),
        })
    }

    pub fn products(&self) -> usize {
        self.products
    }

    /// The addresses of every product of operands at `a` and `b` (elements of `operand_bytes`)
    /// into an output at `out` (elements of `output_bytes`).
    pub fn write(
        &self,
        [a, b, out]: [u64; 3],
        operand_bytes: usize,
        output_bytes: usize,
    ) -> AddressArrays {
        let device = &self.kernel.device;
        let mut buffer = unsafe { device.alloc::<u64>(3 * self.products) }.expect("GPU allocation");
        let args = (
            &mut buffer,
            a,
            b,
            out,
            int(operand_bytes),
            int(output_bytes),
        );
        unsafe {
            self.kernel
                .function
                .clone()
                .launch(per_element(self.products), args)
        }
        .expect("GEMM address kernel launch");
        AddressArrays {
            buffer,
            products: self.products,
        }
    }
}

/// Product `t`'s index on each loop (the last loop fastest), its element offsets in `a`, `b` and
/// the output from the loops' strides, and the three addresses.
pub(super) fn source(loops: &[AxisStrides]) -> String {
    let products: usize = loops.iter().map(|axis| axis.0).product();
    let mut inner = 1usize;
    let mut offsets = String::new();
    for &(size, a, b, out) in loops.iter().rev() {
        offsets += &format!(
            "    {{ long long i = (t / {inner}LL) % {size}LL; oa += i * {a}LL; ob += i * {b}LL; oo += i * {out}LL; }}\n"
        );
        inner *= size;
    }
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(unsigned long long *addresses, unsigned long long a,
        unsigned long long b, unsigned long long out, int operand_bytes, int output_bytes) {{
    long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= {products}LL) return;
    long long oa = 0, ob = 0, oo = 0;
{offsets}    addresses[t] = a + oa * operand_bytes;
    addresses[{products}LL + t] = b + ob * operand_bytes;
    addresses[{twice}LL + t] = out + oo * output_bytes;
}}"#,
        twice = 2 * products
    )
}
