//! Contractions on the GPU. The CPU's contraction pass finds every `SumReduce(Mul(a, b))`
//! (matmuls, batched attention products and all their gradients) and plans it as loops of strided
//! GEMMs; here each plan runs as one cuBLAS call (float32 or bf16 buffers, the tensor-core mode of
//! the run's [`MatmulPrecision`]), batched over its loops, where every matrix has a unit stride on
//! one side; any other plan runs a plain kernel that loops over K per output element. Either way the broadcast product is never materialised: for BERT-base it
//! would exceed 2^31 elements, beyond luminal's 32-bit shape arithmetic.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::{
    cublas::{
        result::gemm_strided_batched_ex,
        sys::{
            cublasComputeType_t, cublasGemmAlgo_t, cublasGemmBatchedEx, cublasOperation_t,
            cublasStatus_t, cudaDataType,
        },
        CudaBlas,
    },
    driver::{CudaDevice, DevicePtrMut, LaunchAsync, LaunchConfig},
};

use super::{
    bf16_operands::{bf16_tensor, input_address},
    bf16_rounding::worth_rounding,
    column_dots::{chunks, is_column_dot, partial_sums_source, totals_source},
    device_buffer::{device_tensor, input_slice},
    gemm_batching::fewer_gemm_calls,
    gemm_pointers::ProductAddresses,
    kernel::{int, per_element, Kernel},
};
use crate::compile::cpu::{AxisStrides, Contraction};
use crate::runtime::MatmulPrecision;

/// How a contraction runs.
#[derive(Clone)]
enum Plan {
    Gemm(GemmCall),
    /// cuBLAS into a buffer laid out `[loops..., m, n]`, then a kernel that moves each element to
    /// its place in the output: for outputs whose unit stride is on a loop axis (a weight
    /// gradient summed over the sequence first, its batch axis innermost).
    Staged {
        call: GemmCall,
        loops: Vec<AxisStrides>,
        scatter: Kernel,
    },
    Kernel(Kernel),
    /// Column dot products (see `column_dots`): partial sums over chunks of K, then, where K
    /// is in several chunks, their totals.
    Columns {
        partial_sums: Kernel,
        totals: Option<Kernel>,
        chunks: usize,
        /// Also the sums of this operand alone, a second output (see `operand_sums`).
        operand_sum: Option<usize>,
    },
}

/// `C = op(X) op(Y)` in cuBLAS's column-major terms, batched over the one loop with strides, or
/// over several with an address per product ([`ProductAddresses`]).
#[derive(Debug, Clone, Copy)]
struct GemmCall {
    /// Whether cuBLAS's first operand is the contraction's `b` (computing the output transposed).
    swapped: bool,
    transx: cublasOperation_t,
    transy: cublasOperation_t,
    rows: i32,
    cols: i32,
    k: i32,
    ldx: i32,
    ldy: i32,
    ldc: i32,
    batch: i32,
    /// Batch strides of (a, b, out), where the plan has one loop.
    batch_strides: (i64, i64, i64),
}

#[derive(Clone, LuminalEqFalse)]
pub struct CudaContraction {
    loops: Vec<AxisStrides>,
    axes: [AxisStrides; 3],
    out_len: usize,
    plan: Plan,
    precision: MatmulPrecision,
    /// Whether the operands arrive rounded to bf16 (`--matmul bf16` and a cuBLAS plan worth it;
    /// see `bf16_operands::share_rounded_operands`).
    reads_bf16: bool,
    /// Whether cuBLAS writes the product in bf16 (see `bf16_products`): only a single-GEMM plan
    /// that reads bf16, whose readers all take bf16.
    writes_bf16: bool,
    /// Where the cuBLAS plan has more than one loop: the kernel that writes each product's
    /// addresses.
    addresses: Option<ProductAddresses>,
    blas: Arc<CudaBlas>,
    device: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaContraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.plan {
            Plan::Gemm(_) => write!(f, "CudaContraction(cuBLAS)"),
            Plan::Staged { .. } => write!(f, "CudaContraction(cuBLAS, staged)"),
            Plan::Columns { .. } => write!(f, "CudaContraction(columns)"),
            // (size, stride in a, in b, in the output) of the loops and of M, N, K: why not cuBLAS.
            Plan::Kernel(_) => write!(
                f,
                "CudaContraction(kernel) {:?} {:?}",
                self.loops, self.axes
            ),
        }
    }
}

/// cuBLAS's operand type and compute type in each precision; the output is float32 and the
/// accumulation float32 in every one. TF32 rounds float32 operands on their way into the tensor
/// cores; bf16 operands are rounded in memory first ([`super::bf16_operands`]).
fn cublas_types(precision: MatmulPrecision) -> (cudaDataType, cublasComputeType_t) {
    match precision {
        MatmulPrecision::Fp32 => (
            cudaDataType::CUDA_R_32F,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
        ),
        MatmulPrecision::Tf32 => (
            cudaDataType::CUDA_R_32F,
            cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        ),
        MatmulPrecision::Bf16 => (
            cudaDataType::CUDA_R_16BF,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
        ),
    }
}

/// How a row-major `[rows, cols]` matrix with strides `(rows.1, cols.1)` reads as cuBLAS's
/// column-major operand: not transposed where rows are unit-stride, transposed where columns are,
/// with its leading dimension; `None` for neither.
fn operand(rows: (usize, usize), cols: (usize, usize)) -> Option<(cublasOperation_t, usize)> {
    let (row_size, row_stride) = rows;
    let (col_size, col_stride) = cols;
    if row_stride == 1 || row_size == 1 {
        let ld = if col_size == 1 { row_size } else { col_stride };
        (ld >= row_size.max(1)).then_some((cublasOperation_t::CUBLAS_OP_N, ld.max(1)))
    } else if col_stride == 1 || col_size == 1 {
        let ld = row_stride;
        (ld >= col_size.max(1)).then_some((cublasOperation_t::CUBLAS_OP_T, ld.max(1)))
    } else {
        None
    }
}

impl GemmCall {
    /// A pair of the contraction's (a, b) as cuBLAS's (x, y).
    fn in_cublas_order<T>(&self, (a, b): (T, T)) -> (T, T) {
        if self.swapped {
            (b, a)
        } else {
            (a, b)
        }
    }

    fn plan(loops: &[AxisStrides], [m, n, k]: [AxisStrides; 3]) -> Option<Self> {
        // (size, stride) of an axis in a, b and the output.
        let in_a = |axis: AxisStrides| (axis.0, axis.1);
        let in_b = |axis: AxisStrides| (axis.0, axis.2);
        let in_out = |axis: AxisStrides| (axis.0, axis.3);
        // The output is written as is: column-major [m, n] (swapped: false) or [n, m] (true).
        let (swapped, ldc) = match operand(in_out(m), in_out(n)) {
            Some((cublasOperation_t::CUBLAS_OP_N, ld)) => (false, ld),
            _ => match operand(in_out(n), in_out(m)) {
                Some((cublasOperation_t::CUBLAS_OP_N, ld)) => (true, ld),
                _ => return None,
            },
        };
        let ((transx, ldx), (transy, ldy), rows, cols) = if swapped {
            // out^T [n, m] = b^T [n, k] a^T [k, m]
            (
                operand(in_b(n), in_b(k))?,
                operand(in_a(k), in_a(m))?,
                n.0,
                m.0,
            )
        } else {
            (
                operand(in_a(m), in_a(k))?,
                operand(in_b(k), in_b(n))?,
                m.0,
                n.0,
            )
        };
        let (batch, batch_strides) = match loops.last() {
            Some(&(size, a, b, out)) => (size, (a as i64, b as i64, out as i64)),
            None => (1, (0, 0, 0)),
        };
        let small = |n: usize| i32::try_from(n).ok();
        Some(Self {
            swapped,
            transx,
            transy,
            rows: small(rows)?,
            cols: small(cols)?,
            k: small(k.0)?,
            ldx: small(ldx)?,
            ldy: small(ldy)?,
            ldc: small(ldc)?,
            batch: small(batch)?,
            batch_strides,
        })
    }
}

/// The plan with its output laid out `[loops..., m, n]`, row-major.
fn staged_layout(
    loops: &[AxisStrides],
    [m, n, k]: [AxisStrides; 3],
) -> (Vec<AxisStrides>, [AxisStrides; 3]) {
    let mut stride = m.0 * n.0;
    let mut staged: Vec<AxisStrides> = loops.to_vec();
    for axis in staged.iter_mut().rev() {
        axis.3 = stride;
        stride *= axis.0;
    }
    (staged, [(m.0, m.1, m.2, n.0), (n.0, n.1, n.2, 1), k])
}

/// Moves element `t` of the staged layout (`[loops..., m, n]`, row-major) to its place in the
/// output.
pub(super) fn scatter_source(loops: &[AxisStrides], [m, n, _]: [AxisStrides; 3]) -> String {
    let mut axes: Vec<AxisStrides> = loops.to_vec();
    axes.extend([m, n]);
    let mut inner = 1;
    let mut offsets = String::new();
    for &(size, _, _, out) in axes.iter().rev() {
        if size > 1 {
            offsets += &format!("    o += (long long)((t / {inner}) % {size}) * {out}LL;\n");
        }
        inner *= size;
    }
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *staged, int n) {{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    long long o = 0;
{offsets}    out[o] = staged[t];
}}"#
    )
}

/// CUDA statements adding output `o`'s offsets in the operands (`a`, `b`) along each output
/// axis, from the output's strides.
pub(super) fn operand_offsets(axes: &[AxisStrides], indent: &str) -> String {
    axes.iter()
        .filter(|axis| axis.0 > 1)
        .map(|&(size, a, b, out)| {
            format!(
                "{indent}{{ long long i = (o / {out}LL) % {size}LL; a += i * {a}LL; b += i * {b}LL; }}\n"
            )
        })
        .collect()
}

/// Lanes of a warp, which share one output's sum where K is long enough to give each work.
pub(super) const WARP: usize = 32;

/// Whether the per-output kernel gives each output a warp (lanes striding over K, so that rows
/// are read coalesced) rather than one thread.
fn warp_per_output(k: AxisStrides) -> bool {
    k.0 >= WARP
}

/// The kernel for plans cuBLAS cannot run, and for dot products (M = N = 1) with more outputs than
/// terms, such as a LayerNorm's row sums: each output's index on every output axis from the
/// output's strides, then the sum over K, by one thread, or by a warp where K is long.
pub(super) fn kernel_source(loops: &[AxisStrides], [m, n, k]: [AxisStrides; 3]) -> String {
    let mut axes: Vec<AxisStrides> = loops.to_vec();
    axes.extend([m, n]);
    let offsets = operand_offsets(&axes, "    ");
    let (k_size, k_a, k_b) = (k.0, k.1, k.2);
    let (index, first, step, finish) = if warp_per_output(k) {
        (
            "(blockIdx.x * blockDim.x + threadIdx.x) / 32",
            "threadIdx.x % 32",
            "32",
            "    for (int lanes = 16; lanes > 0; lanes /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, lanes);\n    if (threadIdx.x % 32 == 0) out[o] = sum;",
        )
    } else {
        (
            "blockIdx.x * blockDim.x + threadIdx.x",
            "0",
            "1",
            "    out[o] = sum;",
        )
    };
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *x, const float *y, int n) {{
    int o = {index};
    if (o >= n) return;
    long long a = 0, b = 0;
{offsets}    float sum = 0.0f;
    for (long long k = {first}; k < {k_size}LL; k += {step}) sum += x[a + k * {k_a}LL] * y[b + k * {k_b}LL];
{finish}
}}"#
    )
}

impl CudaContraction {
    /// Whether this contraction reads its operands rounded to bf16.
    pub fn reads_bf16(&self) -> bool {
        self.reads_bf16
    }

    /// Whether cuBLAS writes this product in bf16.
    pub fn writes_bf16(&self) -> bool {
        self.writes_bf16
    }

    /// Whether cuBLAS can write this product in bf16: a plain GEMM plan on bf16 operands.
    pub fn can_write_bf16(&self) -> bool {
        self.reads_bf16 && matches!(self.plan, Plan::Gemm(_))
    }

    /// The same contraction writing its product in bf16.
    pub fn writing_bf16(&self) -> Self {
        assert!(self.can_write_bf16(), "only a bf16 GEMM plan writes bf16");
        Self {
            writes_bf16: true,
            ..self.clone()
        }
    }

    pub fn new(
        op: &Contraction,
        precision: MatmulPrecision,
        blas: &Arc<CudaBlas>,
        device: &Arc<CudaDevice>,
    ) -> Self {
        let (loops, axes) = (op.loop_axes(), op.gemm_axes());
        // The rewritten plan where cuBLAS can run it, else the CPU's plan as it is.
        let (loops, axes) = match fewer_gemm_calls(&loops, axes) {
            (fewer, fewer_axes) if GemmCall::plan(&fewer, fewer_axes).is_some() => {
                (fewer, fewer_axes)
            }
            _ => (loops, axes),
        };
        let (staged_loops, staged_axes) = staged_layout(&loops, axes);
        // Dot products (M and N both 1) with more outputs than terms each, such as a LayerNorm's
        // row sums, run far faster as one thread per output than as thousands of 1 x 1 GEMMs;
        // long ones (a gradient's squared norm) need cuBLAS's parallel sum.
        let dot = axes[0].0 == 1 && axes[1].0 == 1 && op.out_len() >= axes[2].0;
        let columns = is_column_dot(&loops, axes, op.out_len());
        assert!(
            columns || op.operand_sum().is_none(),
            "operand sums are planned for column dots only"
        );
        let plan = match (
            GemmCall::plan(&loops, axes).filter(|_| !dot),
            GemmCall::plan(&staged_loops, staged_axes).filter(|_| !dot),
        ) {
            _ if columns => {
                let chunks = chunks(axes[2].0);
                let operand_sum = op.operand_sum();
                Plan::Columns {
                    partial_sums: Kernel::compile(
                        device,
                        &partial_sums_source(&loops, axes, chunks, operand_sum),
                    ),
                    totals: (chunks > 1).then(|| Kernel::compile(device, &totals_source(chunks))),
                    chunks,
                    operand_sum,
                }
            }
            (Some(call), _) => Plan::Gemm(call),
            (None, Some(call)) => Plan::Staged {
                call,
                scatter: Kernel::compile(device, &scatter_source(&loops, axes)),
                loops: staged_loops,
            },
            (None, None) => Plan::Kernel(Kernel::compile(device, &kernel_source(&loops, axes))),
        };
        // Only cuBLAS reads bf16 operands. Rounding reads and writes every operand element once
        // more; a product with few multiply-adds per element (attention's, K = 64) loses more to
        // it than bf16 gains.
        let cublas = matches!(plan, Plan::Gemm(_) | Plan::Staged { .. });
        let precision = match precision {
            MatmulPrecision::Bf16 if !cublas || !worth_rounding(&loops, axes) => {
                MatmulPrecision::Tf32
            }
            other => other,
        };
        let addresses = match &plan {
            Plan::Gemm(_) => ProductAddresses::for_loops(device, &loops),
            Plan::Staged { loops, .. } => ProductAddresses::for_loops(device, loops),
            Plan::Kernel(_) | Plan::Columns { .. } => None,
        };
        Self {
            loops,
            axes,
            out_len: op.out_len(),
            plan,
            addresses,
            precision,
            reads_bf16: precision == MatmulPrecision::Bf16,
            writes_bf16: false,
            blas: blas.clone(),
            device: device.clone(),
        }
    }

    /// `a` and `b` point to the operands' buffers, in the operand type of the precision.
    fn run_gemm(&self, call: &GemmCall, loops: &[AxisStrides], a: u64, b: u64, out: u64) {
        let (operand_type, compute) = cublas_types(self.precision);
        let operand_bytes = match operand_type {
            cudaDataType::CUDA_R_16BF => 2,
            _ => 4,
        };
        let (output_type, output_bytes) = if self.writes_bf16 {
            (cudaDataType::CUDA_R_16BF, 2)
        } else {
            (cudaDataType::CUDA_R_32F, 4)
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        if let Some(addresses) = &self.addresses {
            debug_assert_eq!(
                addresses.products(),
                loops.iter().map(|l| l.0).product::<usize>()
            );
            let arrays = addresses.write([a, b, out], operand_bytes, output_bytes);
            let (x, y) = call.in_cublas_order((arrays.array(0), arrays.array(1)));
            // SAFETY: every address is an operand or output element the plan's strides reach,
            // inside the buffers; the arrays are written earlier on the same stream and freed
            // after this call in stream order.
            let status = unsafe {
                cublasGemmBatchedEx(
                    *self.blas.handle(),
                    call.transx,
                    call.transy,
                    call.rows,
                    call.cols,
                    call.k,
                    (&alpha as *const f32).cast(),
                    x as *const *const _,
                    operand_type,
                    call.ldx,
                    y as *const *const _,
                    operand_type,
                    call.ldy,
                    (&beta as *const f32).cast(),
                    arrays.array(2) as *const *mut _,
                    output_type,
                    call.ldc,
                    int(arrays.products),
                    compute,
                    cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            };
            assert_eq!(
                status,
                cublasStatus_t::CUBLAS_STATUS_SUCCESS,
                "cuBLAS batched GEMM"
            );
            return;
        }
        let (x, y) = call.in_cublas_order((a, b));
        let (stride_x, stride_y) =
            call.in_cublas_order((call.batch_strides.0, call.batch_strides.1));
        // SAFETY: the plan's strides come from the operands' views and the output's contiguous
        // shape, so every element cuBLAS touches lies inside the buffers.
        unsafe {
            gemm_strided_batched_ex(
                *self.blas.handle(),
                call.transx,
                call.transy,
                call.rows,
                call.cols,
                call.k,
                (&alpha as *const f32).cast(),
                x as *const _,
                operand_type,
                call.ldx,
                stride_x,
                y as *const _,
                operand_type,
                call.ldy,
                stride_y,
                (&beta as *const f32).cast(),
                out as *mut _,
                output_type,
                call.ldc,
                call.batch_strides.2,
                call.batch,
                compute,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .expect("cuBLAS GEMM");
    }
}

impl Operator for CudaContraction {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        // The operands' views are in the plan; their buffers are read as they are.
        let float_operands = || {
            (
                input_slice(&inputs[0].0, "contraction operand a"),
                input_slice(&inputs[1].0, "contraction operand b"),
            )
        };
        let a_ptr = input_address(&inputs[0].0, self.reads_bf16, "contraction operand a");
        let b_ptr = input_address(&inputs[1].0, self.reads_bf16, "contraction operand b");
        if self.writes_bf16 {
            return vec![self.bf16_product(a_ptr, b_ptr)];
        }
        let mut out = unsafe { self.device.alloc::<f32>(self.out_len) }.expect("GPU allocation");
        match &self.plan {
            Plan::Gemm(call) => {
                let out_ptr = *out.device_ptr_mut();
                self.run_gemm(call, &self.loops, a_ptr, b_ptr, out_ptr);
            }
            Plan::Staged {
                call,
                loops,
                scatter,
            } => {
                let mut staged =
                    unsafe { self.device.alloc::<f32>(self.out_len) }.expect("GPU allocation");
                let staged_ptr = *staged.device_ptr_mut();
                self.run_gemm(call, loops, a_ptr, b_ptr, staged_ptr);
                let args = (&mut out, &staged, int(self.out_len));
                unsafe {
                    scatter
                        .function
                        .clone()
                        .launch(per_element(self.out_len), args)
                }
                .expect("contraction scatter launch");
            }
            Plan::Columns {
                partial_sums,
                totals,
                chunks,
                operand_sum,
            } => {
                let (a, b) = float_operands();
                let n = self.out_len;
                let config = LaunchConfig {
                    grid_dim: (
                        u32::try_from(n.div_ceil(WARP)).expect("grid"),
                        u32::try_from(*chunks).expect("grid"),
                        1,
                    ),
                    block_dim: (WARP as u32, WARP as u32, 1),
                    shared_mem_bytes: 0,
                };
                // Every partial sum and result is written. The results: the dots, then the
                // operand's sums; the kernel writes them, or with several chunks their partial
                // sums, which the totals kernel adds.
                let allocate =
                    |len: usize| unsafe { self.device.alloc::<f32>(len) }.expect("GPU allocation");
                let mut results = vec![out];
                results.extend(operand_sum.map(|_| allocate(n)));
                let mut partials: Vec<_> = match totals {
                    Some(_) => results.iter().map(|_| allocate(chunks * n)).collect(),
                    None => Vec::new(),
                };
                let targets = if partials.is_empty() {
                    &mut results
                } else {
                    &mut partials
                };
                let launched = match &mut targets[..] {
                    [dots] => unsafe {
                        let args = (dots, a, b, int(n));
                        partial_sums.function.clone().launch(config, args)
                    },
                    [dots, sums] => unsafe {
                        let args = (dots, sums, a, b, int(n));
                        partial_sums.function.clone().launch(config, args)
                    },
                    _ => unreachable!("one or two results"),
                };
                launched.expect("contraction columns launch");
                if let Some(totals) = totals {
                    for (total, partial) in results.iter_mut().zip(&partials) {
                        let args = (total, partial, int(n));
                        unsafe { totals.function.clone().launch(per_element(n), args) }
                            .expect("contraction column totals launch");
                    }
                }
                return results.into_iter().map(device_tensor).collect();
            }
            Plan::Kernel(kernel) => {
                let (a, b) = float_operands();
                let args = (&mut out, a, b, int(self.out_len));
                let threads = if warp_per_output(self.axes[2]) {
                    self.out_len * WARP
                } else {
                    self.out_len
                };
                unsafe { kernel.function.clone().launch(per_element(threads), args) }
                    .expect("contraction kernel launch");
            }
        }
        vec![device_tensor(out)]
    }
}

impl CudaContraction {
    /// The product of a bf16 GEMM plan on the bf16 operands at `a` and `b`, written in bf16 by
    /// cuBLAS.
    fn bf16_product(&self, a: u64, b: u64) -> Tensor {
        let Plan::Gemm(call) = &self.plan else {
            unreachable!("writing_bf16 takes only GEMM plans")
        };
        let mut out = unsafe { self.device.alloc::<u16>(self.out_len) }.expect("GPU allocation");
        self.run_gemm(call, &self.loops, a, b, *out.device_ptr_mut());
        bf16_tensor(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// [batch 2, m 3, n 4] x k 5: a row-major [2, 3, 5], b shared across the batch as [5, 4]
    /// read transposed, out [2, 3, 4].
    pub fn batched_plan() -> (Vec<AxisStrides>, [AxisStrides; 3]) {
        (
            vec![(2, 15, 0, 12)],
            [(3, 5, 0, 4), (4, 0, 1, 1), (5, 1, 4, 0)],
        )
    }

    #[test]
    fn a_batched_matmul_is_one_strided_batched_gemm() {
        let (loops, axes) = batched_plan();
        let call = GemmCall::plan(&loops, axes).expect("expressible");
        // Row-major out [3, 4] with unit column stride: cuBLAS computes out^T = b^T a^T.
        assert!(call.swapped);
        assert_eq!((call.rows, call.cols, call.k), (4, 3, 5));
        assert_eq!((call.ldc, call.batch), (4, 2));
        assert_eq!(call.batch_strides, (15, 0, 12));
    }

    /// A weight gradient summed over the sequence first: out `[768 m, 768 n, 32 batch]`, batch
    /// innermost (as measured in BERT-base's graph).
    pub fn batch_innermost_plan() -> (Vec<AxisStrides>, [AxisStrides; 3]) {
        (
            vec![(32, 98304, 98304, 1)],
            [(768, 1, 0, 24576), (768, 0, 1, 32), (128, 768, 768, 0)],
        )
    }

    #[test]
    fn an_output_with_its_unit_stride_on_a_loop_is_staged() {
        let (loops, axes) = batch_innermost_plan();
        assert!(GemmCall::plan(&loops, axes).is_none());
        let (staged_loops, staged_axes) = staged_layout(&loops, axes);
        assert_eq!(staged_loops, vec![(32, 98304, 98304, 768 * 768)]);
        let call = GemmCall::plan(&staged_loops, staged_axes).expect("expressible once staged");
        assert_eq!(
            (call.rows, call.cols, call.k, call.batch),
            (768, 768, 128, 32)
        );
    }

    #[test]
    fn operands_without_a_unit_stride_fall_back() {
        assert!(operand((3, 2), (4, 6)).is_none());
        let loops = vec![];
        let axes = [(3, 2, 0, 4), (4, 0, 1, 1), (5, 6, 4, 0)];
        assert!(GemmCall::plan(&loops, axes).is_none());
    }
}
