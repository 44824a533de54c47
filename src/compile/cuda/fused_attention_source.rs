//! The CUDA C of fused attention ([`super::fused_attention`]): a header of `#define`s for the
//! compiled sizes, layouts and dropout, then a fixed body. The products run on the tensor cores
//! (`mma.sync` m16n8k16, bf16 operands, float32 accumulation); a warp takes 16 query rows, whose
//! scores stay in its registers from the product through the softmax and the dropout mask to the
//! next product. Operands are staged in shared memory as `[row][k]` (k contiguous, rows padded by
//! 8 values so that a fragment's reads fall in different banks); an operand needed the other way
//! round is read transposed, a value at a time.
use super::{
    attention_shape::{AttentionShape, OperandLayout, FORWARD_WARPS},
    bf16_rounding::BF16_BITS,
    dropout_mask::{philox_source, RANDOM_BITS_SOURCE},
    kernel::float_literal,
};

/// The header every kernel of `shape` starts with.
fn header(shape: &AttentionShape, operands: &[(&str, OperandLayout)]) -> String {
    let mut text = format!(
        "#define D {}\n#define SQ {}\n#define SK {}\n#define SQT {}\n#define KT {}\n\
         #define HEADS {}\n#define SCALE {}\n",
        shape.head_dim,
        shape.queries,
        shape.keys,
        shape.padded_queries(),
        shape.padded_keys(),
        shape.heads,
        float_literal(shape.scale),
    );
    for (name, layout) in operands {
        text += &format!(
            "#define {name}_BATCH {}LL\n#define {name}_HEAD {}LL\n#define {name}_ROW {}LL\n",
            layout.batch, layout.head, layout.row
        );
    }
    match &shape.mask {
        Some(mask) => {
            text += &format!(
                "#define MASK 1\n#define STREAM {}u\n#define THRESHOLD {}u\n#define KEPT {}\n",
                mask.stream,
                mask.threshold(),
                float_literal(mask.scale())
            );
        }
        None => text += "#define MASK 0\n",
    }
    text + BF16_BITS + &philox_source() + RANDOM_BITS_SOURCE + COMMON
}

/// The forward kernel, from the layouts of the queries, keys and values and of the context it
/// writes (in bf16 where `bf16_output`).
pub fn forward_source(
    shape: &AttentionShape,
    [query, key, value, context]: [OperandLayout; 4],
    bf16_output: bool,
) -> String {
    header(
        shape,
        &[("Q", query), ("K", key), ("V", value), ("O", context)],
    ) + &format!(
        "#define OUT_BF16 {}\n#define WARPS {FORWARD_WARPS}\n",
        u8::from(bf16_output)
    ) + FORWARD
}

/// The backward kernel, from the layouts of the queries, keys, values and context gradient and
/// of the gradients of the queries, keys and values it writes (each in bf16 where `bf16_outputs`
/// says).
pub fn backward_source(
    shape: &AttentionShape,
    [query, key, value, context_gradient, dq, dk, dv]: [OperandLayout; 7],
    bf16_outputs: [bool; 3],
) -> String {
    header(
        shape,
        &[
            ("Q", query),
            ("K", key),
            ("V", value),
            ("DO", context_gradient),
            ("DQ", dq),
            ("DK", dk),
            ("DV", dv),
        ],
    ) + &format!(
        "#define DQ_BF16 {}\n#define DK_BF16 {}\n#define DV_BF16 {}\n#define WARPS {}\n",
        u8::from(bf16_outputs[0]),
        u8::from(bf16_outputs[1]),
        u8::from(bf16_outputs[2]),
        shape.backward_warps(),
    ) + BACKWARD
}

/// Fragments, `mma`, staging, the softmax with its mask, and stores, shared by both kernels.
const COMMON: &str = r#"
#define NT (KT / 8)
#define PAD 8

__device__ __forceinline__ unsigned int pair(const unsigned short *p) {
    return *(const unsigned int *)p;
}

// Two values of different rows as one operand register, the first in the low half.
__device__ __forceinline__ unsigned int pair_of(unsigned short lo, unsigned short hi) {
    return (unsigned int)lo | ((unsigned int)hi << 16);
}

__device__ __forceinline__ unsigned int pack(float lo, float hi) {
    return pair_of(bf16_bits(lo), bf16_bits(hi));
}

__device__ __forceinline__ void mma(float *c, unsigned int a0, unsigned int a1, unsigned int a2,
                                    unsigned int a3, unsigned int b0, unsigned int b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Rows [first, first + rows) of an operand into `to` ([rows][D + PAD]), rows past `last` zero;
// 8 neighbouring values (16 bytes) a load.
__device__ __forceinline__ void stage(unsigned short *to, const unsigned short *from,
                                      long long row_stride, int first, int rows, int last) {
    for (int i = threadIdx.x; i < rows * (D / 8); i += blockDim.x) {
        int r = i / (D / 8), c = (i % (D / 8)) * 8;
        uint4 x = make_uint4(0u, 0u, 0u, 0u);
        if (first + r < last) x = *(const uint4 *)(from + (first + r) * row_stride + c);
        *(uint4 *)(to + r * (D + PAD) + c) = x;
    }
}

// acc[NT][4] = A rows [16 of them at `a`] times B rows [KT of them at `b`] transposed, over D:
// the warp's scores (queries times keys) or its context gradient times the values.
__device__ __forceinline__ void rows_times_rows(float (*acc)[4], const unsigned short *a,
                                                const unsigned short *b) {
    int g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    #pragma unroll
    for (int j = 0; j < NT; j++)
        #pragma unroll
        for (int i = 0; i < 4; i++) acc[j][i] = 0.0f;
    #pragma unroll
    for (int kk = 0; kk < D; kk += 16) {
        const unsigned short *row = a + g * (D + PAD) + kk + 2 * t;
        unsigned int a0 = pair(row), a2 = pair(row + 8);
        unsigned int a1 = pair(row + 8 * (D + PAD)), a3 = pair(row + 8 * (D + PAD) + 8);
        #pragma unroll
        for (int j = 0; j < NT; j++) {
            const unsigned short *col = b + (j * 8 + g) * (D + PAD) + kk + 2 * t;
            mma(acc[j], a0, a1, a2, a3, pair(col), pair(col + 8));
        }
    }
}

#if !MASK
#define KEPT 1.0f
#endif

// The dropout mask's value of `s[j][i]`, from bit `j * 4 + i` of `keep`.
__device__ __forceinline__ float kept(unsigned long long keep, int j, int i) {
    return (keep >> (j * 4 + i)) & 1ull ? KEPT : 0.0f;
}

// The softmax of the warp's scores `s` (rows g and g + 8 of its 16, keys j * 8 + 2t + {0, 1}),
// scaled and biased, in place; returns which of them the dropout mask keeps (bit j * 4 + i for
// s[j][i]). `first_row` is the warp's first row of attention's probabilities ([batch, heads,
// queries] flat).
__device__ __forceinline__ unsigned long long softmax_rows(float (*s)[4], const float *bias,
                                                           long long first_row,
                                                           unsigned int key0, unsigned int key1) {
    int g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    float mx[2] = {__int_as_float(0xff800000), __int_as_float(0xff800000)};
    #pragma unroll
    for (int j = 0; j < NT; j++)
        #pragma unroll
        for (int c = 0; c < 2; c++) {
            int key = j * 8 + 2 * t + c;
            float w = key < SK ? bias[key] : 0.0f;
            #pragma unroll
            for (int half = 0; half < 2; half++) {
                float y = key < SK ? s[j][2 * half + c] * SCALE + w : __int_as_float(0xff800000);
                s[j][2 * half + c] = y;
                mx[half] = fmaxf(mx[half], y);
            }
        }
    float sum[2] = {0.0f, 0.0f};
    #pragma unroll
    for (int half = 0; half < 2; half++) {
        mx[half] = fmaxf(mx[half], __shfl_xor_sync(0xffffffffu, mx[half], 1));
        mx[half] = fmaxf(mx[half], __shfl_xor_sync(0xffffffffu, mx[half], 2));
    }
    #pragma unroll
    for (int j = 0; j < NT; j++)
        #pragma unroll
        for (int i = 0; i < 4; i++) {
            float y = __expf(s[j][i] - mx[i / 2]);
            s[j][i] = y;
            sum[i / 2] += y;
        }
    #pragma unroll
    for (int half = 0; half < 2; half++) {
        sum[half] += __shfl_xor_sync(0xffffffffu, sum[half], 1);
        sum[half] += __shfl_xor_sync(0xffffffffu, sum[half], 2);
        sum[half] = 1.0f / sum[half];
    }
    #pragma unroll
    for (int j = 0; j < NT; j++)
        #pragma unroll
        for (int i = 0; i < 4; i++) s[j][i] *= sum[i / 2];
    unsigned long long keep = 0ull;
#if MASK
    #pragma unroll
    for (int half = 0; half < 2; half++) {
        long long row = first_row + g + 8 * half;
        #pragma unroll
        for (int j = 0; j < NT; j++) {
#if SK % 8 == 0
            // The row's keys j * 8 .. j * 8 + 8 are one Philox counter's 8 values; this lane's
            // two are the halves of its word t.
            uint4 w = philox((unsigned int)((row * SK + j * 8) >> 3), STREAM, key0, key1);
            unsigned int word = t == 0 ? w.x : (t == 1 ? w.y : (t == 2 ? w.z : w.w));
            unsigned long long both = (unsigned long long)((word & 0xffffu) < THRESHOLD)
                                      | ((unsigned long long)((word >> 16) < THRESHOLD) << 1);
#else
            unsigned long long both = 0ull;
            #pragma unroll
            for (int c = 0; c < 2; c++) {
                long long e = row * SK + j * 8 + 2 * t + c;
                uint4 w = philox((unsigned int)(e >> 3), STREAM, key0, key1);
                both |= (unsigned long long)(random_bits(w, (int)(e & 7)) < THRESHOLD) << c;
            }
#endif
            keep |= both << (j * 4 + 2 * half);
        }
    }
#else
    keep = ~0ull;
#endif
    return keep;
}

// Two neighbouring values of a row of a [rows][D] output, float32 or bf16.
__device__ __forceinline__ void store_pair(float *out, long long at, float v0, float v1) {
    *(float2 *)(out + at) = make_float2(v0, v1);
}

__device__ __forceinline__ void store_pair(unsigned short *out, long long at, float v0, float v1) {
    *(unsigned int *)(out + at) = pack(v0, v1);
}

// The warp's 16 rows of acc[D / 8][4] into rows [first, first + 16) of `out` (rows
// `row_stride` apart), those below `last`.
template <typename T>
__device__ __forceinline__ void store_rows(T *out, long long row_stride, float (*acc)[4],
                                           int first, int last) {
    int g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    #pragma unroll
    for (int half = 0; half < 2; half++) {
        int row = first + g + 8 * half;
        if (row >= last) continue;
        #pragma unroll
        for (int n = 0; n < D / 8; n++)
            store_pair(out, row * row_stride + n * 8 + 2 * t, acc[n][2 * half],
                       acc[n][2 * half + 1]);
    }
}
"#;

/// A block takes 64 queries of one sequence and head: its keys staged as they are and its values
/// transposed (`[dim][key]`, the B operand of probabilities times values).
const FORWARD: &str = r#"
#if OUT_BF16
typedef unsigned short out_t;
#else
typedef float out_t;
#endif

extern "C" __global__ void __launch_bounds__(WARPS * 32) dropbert_kernel(
        out_t *__restrict__ out, const unsigned short *__restrict__ q,
        const unsigned short *__restrict__ k, const unsigned short *__restrict__ v,
        const float *__restrict__ bias, unsigned int key0, unsigned int key1) {
    __shared__ __align__(16) unsigned short qs[WARPS * 16 * (D + PAD)];
    __shared__ __align__(16) unsigned short ks[KT * (D + PAD)];
    __shared__ __align__(16) unsigned short vt[D * (KT + PAD)];
    const int tiles = (SQ + WARPS * 16 - 1) / (WARPS * 16);
    int bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * WARPS * 16;
    int b = bh / HEADS, h = bh % HEADS;
    stage(qs, q + b * Q_BATCH + h * Q_HEAD, Q_ROW, q0, WARPS * 16, SQ);
    stage(ks, k + b * K_BATCH + h * K_HEAD, K_ROW, 0, KT, SK);
    const unsigned short *vb = v + b * V_BATCH + h * V_HEAD;
    // Neighbouring lanes take neighbouring keys, so that their stores fall in different banks.
    for (int i = threadIdx.x; i < KT * (D / 8); i += blockDim.x) {
        int key = i % KT, c = (i / KT) * 8;
        uint4 x = make_uint4(0u, 0u, 0u, 0u);
        if (key < SK) x = *(const uint4 *)(vb + key * V_ROW + c);
        const unsigned short *e = (const unsigned short *)&x;
        #pragma unroll
        for (int dim = 0; dim < 8; dim++) vt[(c + dim) * (KT + PAD) + key] = e[dim];
    }
    __syncthreads();
    int warp = threadIdx.x / 32, g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    int first = q0 + warp * 16;
    if (first >= SQ) return;
    float s[NT][4];
    rows_times_rows(s, qs + warp * 16 * (D + PAD), ks);
    unsigned long long keep = softmax_rows(s, bias + b * SK, (long long)bh * SQ + first, key0, key1);
    // Probabilities times values: the C fragments of two neighbouring key tiles are the A
    // fragment of one K step.
    float o[D / 8][4];
    #pragma unroll
    for (int n = 0; n < D / 8; n++)
        #pragma unroll
        for (int i = 0; i < 4; i++) o[n][i] = 0.0f;
    #pragma unroll
    for (int kt = 0; kt < KT / 16; kt++) {
        int j = 2 * kt;
        unsigned int a0 = pack(s[j][0] * kept(keep, j, 0), s[j][1] * kept(keep, j, 1));
        unsigned int a1 = pack(s[j][2] * kept(keep, j, 2), s[j][3] * kept(keep, j, 3));
        unsigned int a2 = pack(s[j + 1][0] * kept(keep, j + 1, 0), s[j + 1][1] * kept(keep, j + 1, 1));
        unsigned int a3 = pack(s[j + 1][2] * kept(keep, j + 1, 2), s[j + 1][3] * kept(keep, j + 1, 3));
        #pragma unroll
        for (int n = 0; n < D / 8; n++) {
            const unsigned short *col = vt + (n * 8 + g) * (KT + PAD) + kt * 16 + 2 * t;
            mma(o[n], a0, a1, a2, a3, pair(col), pair(col + 8));
        }
    }
    store_rows(out + b * O_BATCH + h * O_HEAD, O_ROW, o, first, SQ);
}
"#;

/// A block takes every query and key of one sequence and head: each warp recomputes its rows'
/// probabilities, takes the context gradient times the values to the scores' gradient, and
/// writes its rows of the queries' gradient; then, from the probabilities and the scores'
/// gradient left in shared memory, the warps take the keys' and values' gradients 16 keys at a
/// time.
const BACKWARD: &str = r#"
#if DQ_BF16
typedef unsigned short dq_t;
#else
typedef float dq_t;
#endif
#if DK_BF16
typedef unsigned short dk_t;
#else
typedef float dk_t;
#endif
#if DV_BF16
typedef unsigned short dv_t;
#else
typedef float dv_t;
#endif

// acc[D / 8][4] = the 16 rows of `a` ([rows][KT + PAD], rows `first` on) times `b` ([KT][D + PAD])
// over `depth`: the A fragments read as they lie, the B fragments transposed.
__device__ __forceinline__ void rows_times_columns(float (*acc)[4], const unsigned short *a,
                                                   int a_stride, const unsigned short *b,
                                                   int depth) {
    int g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    #pragma unroll
    for (int n = 0; n < D / 8; n++)
        #pragma unroll
        for (int i = 0; i < 4; i++) acc[n][i] = 0.0f;
    for (int kk = 0; kk < depth; kk += 16) {
        const unsigned short *row = a + g * a_stride + kk + 2 * t;
        unsigned int a0 = pair(row), a2 = pair(row + 8);
        unsigned int a1 = pair(row + 8 * a_stride), a3 = pair(row + 8 * a_stride + 8);
        #pragma unroll
        for (int n = 0; n < D / 8; n++) {
            const unsigned short *col = b + (kk + 2 * t) * (D + PAD) + n * 8 + g;
            unsigned int b0 = pair_of(col[0], col[D + PAD]);
            unsigned int b1 = pair_of(col[8 * (D + PAD)], col[9 * (D + PAD)]);
            mma(acc[n], a0, a1, a2, a3, b0, b1);
        }
    }
}

// acc[D / 8][4] = columns [first, first + 16) of `a` ([SQT][KT + PAD]) transposed, times `b`
// ([SQT][D + PAD]) over the queries: both operands read transposed.
__device__ __forceinline__ void columns_times_columns(float (*acc)[4], const unsigned short *a,
                                                      int first, const unsigned short *b) {
    int g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    #pragma unroll
    for (int n = 0; n < D / 8; n++)
        #pragma unroll
        for (int i = 0; i < 4; i++) acc[n][i] = 0.0f;
    const int as = KT + PAD, bs = D + PAD;
    for (int kk = 0; kk < SQT; kk += 16) {
        const unsigned short *col = a + (kk + 2 * t) * as + first + g;
        unsigned int a0 = pair_of(col[0], col[as]);
        unsigned int a1 = pair_of(col[8], col[as + 8]);
        unsigned int a2 = pair_of(col[8 * as], col[9 * as]);
        unsigned int a3 = pair_of(col[8 * as + 8], col[9 * as + 8]);
        #pragma unroll
        for (int n = 0; n < D / 8; n++) {
            const unsigned short *bc = b + (kk + 2 * t) * bs + n * 8 + g;
            unsigned int b0 = pair_of(bc[0], bc[bs]);
            unsigned int b1 = pair_of(bc[8 * bs], bc[9 * bs]);
            mma(acc[n], a0, a1, a2, a3, b0, b1);
        }
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) dropbert_kernel(
        dq_t *__restrict__ dq, dk_t *__restrict__ dk, dv_t *__restrict__ dv,
        const unsigned short *__restrict__ q, const unsigned short *__restrict__ k,
        const unsigned short *__restrict__ v, const unsigned short *__restrict__ dout,
        const float *__restrict__ bias, unsigned int key0, unsigned int key1) {
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short *qs = shared;
    unsigned short *dos = qs + SQT * (D + PAD);
    unsigned short *ks = dos + SQT * (D + PAD);
    unsigned short *vs = ks + KT * (D + PAD);
    unsigned short *ps = vs + KT * (D + PAD);
    unsigned short *dss = ps + SQT * (KT + PAD);
    int bh = blockIdx.x, b = bh / HEADS, h = bh % HEADS;
    stage(qs, q + b * Q_BATCH + h * Q_HEAD, Q_ROW, 0, SQT, SQ);
    stage(dos, dout + b * DO_BATCH + h * DO_HEAD, DO_ROW, 0, SQT, SQ);
    stage(ks, k + b * K_BATCH + h * K_HEAD, K_ROW, 0, KT, SK);
    stage(vs, v + b * V_BATCH + h * V_HEAD, V_ROW, 0, KT, SK);
    __syncthreads();
    int warp = threadIdx.x / 32, g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    int first = warp * 16;
    {
        float s[NT][4], dp[NT][4];
        rows_times_rows(s, qs + first * (D + PAD), ks);
        unsigned long long keep = softmax_rows(s, bias + b * SK, (long long)bh * SQ + first, key0, key1);
        rows_times_rows(dp, dos + first * (D + PAD), vs);
        // The scores' gradient, as `AttentionProbabilitiesGradient` takes it: g = dp * mask,
        // ds = scale * y * (g - sum_k g_k y_k).
        float dot[2] = {0.0f, 0.0f};
        #pragma unroll
        for (int j = 0; j < NT; j++)
            #pragma unroll
            for (int i = 0; i < 4; i++) {
                dp[j][i] *= kept(keep, j, i);
                dot[i / 2] += s[j][i] * dp[j][i];
            }
        #pragma unroll
        for (int half = 0; half < 2; half++) {
            dot[half] += __shfl_xor_sync(0xffffffffu, dot[half], 1);
            dot[half] += __shfl_xor_sync(0xffffffffu, dot[half], 2);
        }
        #pragma unroll
        for (int j = 0; j < NT; j++)
            #pragma unroll
            for (int half = 0; half < 2; half++) {
                int row = first + g + 8 * half, at = row * (KT + PAD) + j * 8 + 2 * t;
                bool live = row < SQ;
                float p0 = s[j][2 * half] * kept(keep, j, 2 * half);
                float p1 = s[j][2 * half + 1] * kept(keep, j, 2 * half + 1);
                float d0 = (s[j][2 * half] * (dp[j][2 * half] - dot[half])) * SCALE;
                float d1 = (s[j][2 * half + 1] * (dp[j][2 * half + 1] - dot[half])) * SCALE;
                *(unsigned int *)(ps + at) = live ? pack(p0, p1) : 0u;
                *(unsigned int *)(dss + at) = live ? pack(d0, d1) : 0u;
            }
    }
    __syncwarp();
    {
        // The queries' gradient: the warp's rows of the scores' gradient times the keys.
        float acc[D / 8][4];
        rows_times_columns(acc, dss + first * (KT + PAD), KT + PAD, ks, KT);
        store_rows(dq + b * DQ_BATCH + h * DQ_HEAD, DQ_ROW, acc, first, SQ);
    }
    __syncthreads();
    for (int tile = warp; tile < KT / 16; tile += WARPS) {
        float acc[D / 8][4];
        columns_times_columns(acc, ps, tile * 16, dos);
        store_rows(dv + b * DV_BATCH + h * DV_HEAD, DV_ROW, acc, tile * 16, SK);
        columns_times_columns(acc, dss, tile * 16, qs);
        store_rows(dk + b * DK_BATCH + h * DK_HEAD, DK_ROW, acc, tile * 16, SK);
    }
}
"#;

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ops::DropoutMask;

    /// `[batch, seq, heads * dim]` as a `[batch, head, row, dim]` operand.
    pub fn token_major(seq: usize, heads: usize, dim: usize) -> OperandLayout {
        OperandLayout {
            batch: seq * heads * dim,
            head: dim,
            row: heads * dim,
        }
    }

    /// BERT-base's attention at `queries` over `keys`, with attention dropout.
    pub fn bert_base(queries: usize, keys: usize) -> AttentionShape {
        AttentionShape {
            batch: 256,
            heads: 12,
            queries,
            keys,
            head_dim: 64,
            scale: 0.125,
            mask: Some(DropoutMask {
                len: 256 * 12 * queries * keys,
                rate: 0.1,
                stream: 7,
            }),
        }
    }

    #[test]
    fn the_header_carries_the_sizes_layouts_and_mask() {
        let layout = token_major(64, 12, 64);
        let text = forward_source(&bert_base(64, 128), [layout; 4], true);
        for line in [
            "#define SQ 64\n",
            "#define SK 128\n",
            "#define Q_ROW 768LL\n",
            "#define V_BATCH 49152LL\n",
            "#define MASK 1\n",
            "#define STREAM 7u\n",
            "#define OUT_BF16 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?}");
        }
        let plain = AttentionShape {
            mask: None,
            ..bert_base(64, 64)
        };
        assert!(
            backward_source(&plain, [layout; 7], [true, false, true]).contains("#define MASK 0\n")
        );
    }
}
