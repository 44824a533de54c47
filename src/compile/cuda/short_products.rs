//! Attention's products at short sequences, on the tensor cores in 64 x 64 tiles. Token
//! dropping's middle layers multiply 64 kept queries by 64 keys per sequence and head: 3072
//! products of 64 x 64 x 64 at BERT-base's 256 x 128. cuBLAS's pointer-array call took 46.9 us for
//! them (run 53), where a quarter of the 128-token call's 69.8 us would be 17: its tiles are
//! sized for larger matrices. Here a block of 4 warps computes one 64 x 64 tile of one product
//! with `mma.sync` (bf16 operands, float32 accumulation), staging the operands' tiles in shared
//! memory through their own strides, so that any of the six products (forward and backward,
//! operands read as they are laid out) runs without a copy.
#[cfg(feature = "cuda")]
use std::sync::Arc;

#[cfg(feature = "cuda")]
use luminal_cudarc::driver::{CudaDevice, LaunchAsync, LaunchConfig};

use super::bf16_rounding::BF16_BITS;
#[cfg(feature = "cuda")]
use super::kernel::Kernel;
use crate::compile::cpu::AxisStrides;

/// Rows and columns of a block's output tile.
const TILE: usize = 64;
/// Threads of a block: 4 warps, 16 rows of the tile each.
const THREADS: u32 = 128;
/// The longest stretch of K staged at once.
const MAX_K_CHUNK: usize = 64;
/// The most multiply-adds a product may take: half of a 128-token head's (whose products cuBLAS
/// runs near the card's bandwidth, run 55).
const MAX_MULTIPLY_ADDS: usize = 64 * 64 * 128;
/// Elements a thread moves at once where the layout allows (16 bytes of bf16).
const VECTOR: usize = 8;

/// The two kernels (float32 and bf16 output) of one plan, and its launch.
#[cfg(feature = "cuda")]
#[derive(Clone, Debug)]
pub struct ShortProducts {
    float_output: Kernel,
    bf16_output: Kernel,
    blocks: usize,
}

/// Whether a plan of `loops` and `[m, n, k]` on bf16 operands is one this kernel takes: several
/// loops (a pointer-array call on cuBLAS) of short products, at most a tile on one side and two
/// on the other.
pub fn takes(loops: &[AxisStrides], [m, n, k]: [AxisStrides; 3]) -> bool {
    loops.len() > 1
        && m.0.min(n.0) <= TILE
        && m.0.max(n.0) <= 2 * TILE
        && k.0 > 0
        && m.0 * n.0 * k.0 <= MAX_MULTIPLY_ADDS
}

#[cfg(feature = "cuda")]
impl ShortProducts {
    pub fn new(device: &Arc<CudaDevice>, loops: &[AxisStrides], axes: [AxisStrides; 3]) -> Self {
        let products: usize = loops.iter().map(|axis| axis.0).product();
        let tiles = axes[0].0.div_ceil(TILE) * axes[1].0.div_ceil(TILE);
        Self {
            float_output: Kernel::compile_for_tensor_cores(device, &source(loops, axes, false)),
            bf16_output: Kernel::compile_for_tensor_cores(device, &source(loops, axes, true)),
            blocks: products * tiles,
        }
    }

    /// Every product of the bf16 operands at `a` and `b` into `out` (float32 or bf16 elements).
    pub fn launch(&self, a: u64, b: u64, out: u64, bf16_output: bool) {
        let kernel = if bf16_output {
            &self.bf16_output
        } else {
            &self.float_output
        };
        let config = LaunchConfig {
            grid_dim: (u32::try_from(self.blocks).expect("grid"), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        unsafe { kernel.function.clone().launch(config, (a, b, out)) }
            .expect("short products launch");
    }
}

/// The kernel of one plan: block `t` takes tile `t % tiles` of product `t / tiles`; the product's
/// index on each loop (the last loop fastest) gives its offsets in `a`, `b` and the output.
pub fn source(loops: &[AxisStrides], [m, n, k]: [AxisStrides; 3], bf16_output: bool) -> String {
    let tiles_n = n.0.div_ceil(TILE);
    let tiles = m.0.div_ceil(TILE) * tiles_n;
    let mut inner = 1usize;
    let mut offsets = String::new();
    for &(size, a, b, out) in loops.iter().rev() {
        offsets += &format!(
            "    {{ long long i = (product / {inner}LL) % {size}LL; oa += i * {a}LL; ob += i * {b}LL; oo += i * {out}LL; }}\n"
        );
        inner *= size;
    }
    let chunk = k.0.div_ceil(16).min(MAX_K_CHUNK / 16) * 16;
    // Each operand's tile is staged [row][k] (k contiguous, padded by 8 so that the fragments'
    // reads fall in different banks), read from memory along its unit stride, 16 bytes at a time
    // where every offset is a multiple of 8 elements.
    let stage = |name: &str, side: AxisStrides, stride: fn(&AxisStrides) -> usize| {
        let (rows, row_stride, k_stride) = (side.0, stride(&side), stride(&k));
        let (origin, base) = if name == "as" {
            ("m0", "(a + oa)")
        } else {
            ("n0", "(b + ob)")
        };
        let aligned = loops.iter().all(|axis| stride(axis).is_multiple_of(VECTOR));
        let vectors = |unit: usize, other_len: usize, other_stride: usize| {
            aligned
                && unit.is_multiple_of(VECTOR)
                && (other_stride.is_multiple_of(VECTOR) || other_len == 1)
        };
        if k_stride == 1 && vectors(k.0, rows, row_stride) {
            // 8 neighbouring k of one row: one load, one store.
            format!(
                "        for (int v = threadIdx.x; v < TILE * CHUNK / 8; v += THREADS) {{
            int r = v / (CHUNK / 8), c = (v % (CHUNK / 8)) * 8;
            int side = {origin} + r, kk = k0 + c;
            uint4 x = make_uint4(0u, 0u, 0u, 0u);
            if (side < {rows} && kk < K) x = *(const uint4 *)({base} + side * {row_stride}LL + kk);
            *(uint4 *)&{name}[r][c] = x;
        }}\n"
            )
        } else if row_stride == 1 && vectors(rows, k.0, k_stride) {
            // 8 neighbouring rows at one k: one load, 8 stores; a warp's lanes take 32
            // neighbouring k, so that their stores fall in different banks.
            format!(
                "        for (int v = threadIdx.x; v < TILE * CHUNK / 8; v += THREADS) {{
            int c = v % CHUNK, r = (v / CHUNK) * 8;
            int side = {origin} + r, kk = k0 + c;
            uint4 x = make_uint4(0u, 0u, 0u, 0u);
            if (side < {rows} && kk < K) x = *(const uint4 *)({base} + side + kk * {k_stride}LL);
            const unsigned short *e = (const unsigned short *)&x;
            #pragma unroll
            for (int i = 0; i < 8; i++) {name}[r + i][c] = e[i];
        }}\n"
            )
        } else {
            let (row, column) = if k_stride == 1 {
                ("e / CHUNK", "e % CHUNK")
            } else {
                ("e % TILE", "e / TILE")
            };
            format!(
                "        for (int e = threadIdx.x; e < TILE * CHUNK; e += THREADS) {{
            int r = {row}, c = {column};
            int side = {origin} + r, kk = k0 + c;
            {name}[r][c] = (side < {rows} && kk < K) ? {base}[side * {row_stride}LL + kk * {k_stride}LL] : (unsigned short)0;
        }}\n"
            )
        }
    };
    let stage_a = stage("as", m, |axis| axis.1);
    let stage_b = stage("bs", n, |axis| axis.2);
    let (out_type, store) = if bf16_output {
        ("unsigned short", "bf16_bits(v)")
    } else {
        ("float", "v")
    };
    // Neighbouring columns as one store where they are neighbours in memory at even offsets.
    let paired =
        n.3 == 1 && m.3 % 2 == 0 && n.0 % 2 == 0 && loops.iter().all(|axis| axis.3 % 2 == 0);
    let put_pair = match (paired, bf16_output) {
        (true, false) => "if (row < M && col < N) *(float2 *)&out[oo + row * OUT_M + col] = make_float2(v0, v1);",
        (true, true) => "if (row < M && col < N) *(unsigned int *)&out[oo + row * OUT_M + col] = bf16_bits(v0) | ((unsigned int)bf16_bits(v1) << 16);",
        (false, _) => "put(out, oo, row, col, v0); put(out, oo, row, col + 1, v1);",
    };
    format!(
        r#"{BF16_BITS}
#define TILE {TILE}
#define CHUNK {chunk}
#define THREADS {THREADS}
#define K {k_len}

__device__ __forceinline__ unsigned int pair(const unsigned short *p) {{
    return *(const unsigned int *)p;
}}

#define M {m_len}
#define N {n_len}
#define OUT_M {out_m}LL

__device__ __forceinline__ void put({out_type} *out, long long oo, int row, int col, float v) {{
    if (row < M && col < N) out[oo + row * OUT_M + col * {out_n}LL] = {store};
}}

__device__ __forceinline__ void put_pair({out_type} *out, long long oo, int row, int col, float v0, float v1) {{
    {put_pair}
}}

extern "C" __global__ void __launch_bounds__(THREADS) dropbert_kernel(
        const unsigned short *__restrict__ a, const unsigned short *__restrict__ b,
        {out_type} *__restrict__ out) {{
    __shared__ __align__(16) unsigned short as[TILE][CHUNK + 8];
    __shared__ __align__(16) unsigned short bs[TILE][CHUNK + 8];
    long long product = blockIdx.x / {tiles};
    int tile = blockIdx.x % {tiles};
    int m0 = (tile / {tiles_n}) * TILE, n0 = (tile % {tiles_n}) * TILE;
    long long oa = 0, ob = 0, oo = 0;
{offsets}    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int g = lane / 4, q = lane % 4;
    float acc[8][4];
    #pragma unroll
    for (int j = 0; j < 8; j++) for (int i = 0; i < 4; i++) acc[j][i] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += CHUNK) {{
{stage_a}{stage_b}        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < CHUNK; kk += 16) {{
            const unsigned short *row = as[warp * 16 + g] + kk + 2 * q;
            unsigned int a0 = pair(row), a2 = pair(row + 8);
            unsigned int a1 = pair(row + 8 * (CHUNK + 8)), a3 = pair(row + 8 * (CHUNK + 8) + 8);
            #pragma unroll
            for (int j = 0; j < 8; j++) {{
                const unsigned short *col = bs[j * 8 + g] + kk + 2 * q;
                unsigned int b0 = pair(col), b1 = pair(col + 8);
                asm volatile(
                    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                    "{{%0, %1, %2, %3}}, {{%4, %5, %6, %7}}, {{%8, %9}}, {{%0, %1, %2, %3}};\n"
                    : "+f"(acc[j][0]), "+f"(acc[j][1]), "+f"(acc[j][2]), "+f"(acc[j][3])
                    : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
            }}
        }}
        __syncthreads();
    }}
    int row = m0 + warp * 16 + g;
    #pragma unroll
    for (int j = 0; j < 8; j++) {{
        int col = n0 + j * 8 + 2 * q;
        put_pair(out, oo, row, col, acc[j][0], acc[j][1]);
        put_pair(out, oo, row + 8, col, acc[j][2], acc[j][3]);
    }}
}}"#,
        k_len = k.0,
        m_len = m.0,
        n_len = n.0,
        out_m = m.3,
        out_n = n.3,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BERT-base's scores at 64 kept tokens: q and k [256, 64, 12, 64], scores [256, 12, 64, 64].
    fn kept_token_scores() -> (Vec<AxisStrides>, [AxisStrides; 3]) {
        (
            vec![
                (256, 64 * 768, 64 * 768, 12 * 64 * 64),
                (12, 64, 64, 64 * 64),
            ],
            [(64, 768, 0, 64), (64, 0, 768, 1), (64, 1, 1, 0)],
        )
    }

    #[test]
    fn takes_the_kept_tokens_products_and_leaves_the_full_ones_to_cublas() {
        let (loops, axes) = kept_token_scores();
        assert!(takes(&loops, axes));
        // The split layer's 64 queries over 128 keys, and their product with the values.
        let split_scores = [(64, 768, 0, 128), (128, 0, 768, 1), (64, 1, 1, 0)];
        let split_context = [(64, 128, 0, 768), (64, 0, 1, 1), (128, 1, 768, 0)];
        assert!(takes(&loops, split_scores));
        assert!(takes(&loops, split_context));
        // All 128 tokens: cuBLAS runs these near the card's bandwidth.
        let full_scores = [(128, 768, 0, 128), (128, 0, 768, 1), (64, 1, 1, 0)];
        let full_context = [(128, 128, 0, 768), (64, 0, 1, 1), (128, 1, 768, 0)];
        assert!(!takes(&loops, full_scores));
        assert!(!takes(&loops, full_context));
        assert!(
            !takes(&loops[..1], axes),
            "one loop is one strided cuBLAS call"
        );
    }

    #[test]
    fn the_kernel_reads_each_operand_along_its_unit_stride() {
        let (loops, axes) = kept_token_scores();
        let text = source(&loops, axes, false);
        // Both operands have k contiguous: 8 neighbouring k a load.
        assert_eq!(
            text.matches("int r = v / (CHUNK / 8), c = (v % (CHUNK / 8)) * 8;")
                .count(),
            2
        );
        // Scores are written two neighbouring columns at a time.
        assert!(text.contains("make_float2(v0, v1)"));
        // Probabilities times values: v [256, 64 keys, 12, 64] has n (the head dimension)
        // contiguous and k strided: 8 neighbouring rows a load.
        let pv = [(64, 64, 0, 768), (64, 0, 1, 1), (64, 1, 768, 0)];
        let loops = vec![
            (256, 12 * 64 * 64, 64 * 768, 64 * 768),
            (12, 64 * 64, 64, 64),
        ];
        let text = source(&loops, pv, true);
        assert_eq!(
            text.matches("int r = v / (CHUNK / 8), c = (v % (CHUNK / 8)) * 8;")
                .count(),
            1
        );
        assert_eq!(
            text.matches("int c = v % CHUNK, r = (v / CHUNK) * 8;")
                .count(),
            1
        );
        assert!(text.contains("bf16_bits(v0) | ((unsigned int)bf16_bits(v1) << 16)"));
        // A row stride that is not a multiple of 8 elements: one element a load.
        let odd = [(64, 67, 0, 64), (64, 0, 64, 1), (64, 1, 1, 0)];
        let text = source(
            &[(4, 67 * 64, 64 * 64, 64 * 64), (2, 0, 0, 4 * 64 * 64)],
            odd,
            false,
        );
        assert_eq!(text.matches("int r = e / CHUNK, c = e % CHUNK;").count(), 1);
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn nvrtc_compiles_the_kernel_for_the_tensor_cores() {
        use super::super::kernel::{ptx_for, TENSOR_CORE_ARCH};
        let (loops, axes) = kept_token_scores();
        for bf16_output in [false, true] {
            ptx_for(&source(&loops, axes, bf16_output), TENSOR_CORE_ARCH);
        }
        // The split layer's scores (N of 128 in two tiles), and its context (K of 128 in two
        // chunks, the values read 8 rows a load).
        let split_scores = [(64, 768, 0, 128), (128, 0, 768, 1), (64, 1, 1, 0)];
        ptx_for(&source(&loops, split_scores, false), TENSOR_CORE_ARCH);
        let split_context = [(64, 128, 0, 768), (64, 0, 1, 1), (128, 1, 768, 0)];
        let context_loops = vec![
            (256, 12 * 64 * 128, 128 * 768, 64 * 768),
            (12, 64 * 128, 64, 64),
        ];
        ptx_for(
            &source(&context_loops, split_context, true),
            TENSOR_CORE_ARCH,
        );
    }
}
