//! The CUDA C of fused attention ([`super::fused_attention`]): a header of `#define`s for the
//! compiled sizes, layouts and dropout, then a fixed body. The products run on the tensor cores
//! (`mma.sync` m16n8k16, bf16 operands, float32 accumulation); a warp takes 16 query rows, whose
//! scores stay in its registers from the product through the softmax and the dropout mask to the
//! next product. Operands are staged in shared memory as they lie (the head dimension
//! contiguous, rows padded by 8 values so that `ldmatrix`'s eight rows fall in different banks).
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
/// With `keep_bits` (a backward kernel will read them), it also writes its dropout mask's bits.
pub fn forward_source(
    shape: &AttentionShape,
    [query, key, value, context]: [OperandLayout; 4],
    bf16_output: bool,
    keep_bits: bool,
) -> String {
    header(
        shape,
        &[("Q", query), ("K", key), ("V", value), ("O", context)],
    ) + &format!(
        "#define OUT_BF16 {}\n#define KEEP_OUT {}\n#define WARPS {FORWARD_WARPS}\n",
        u8::from(bf16_output),
        u8::from(keep_bits && shape.mask.is_some()),
    ) + FORWARD
}

/// The backward kernel, from the layouts of the queries, keys, values and context gradient and
/// of the gradients of the queries, keys and values it writes (each in bf16 where `bf16_outputs`
/// says). With dropout it reads the forward kernel's mask bits rather than drawing them again.
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
/// Operands are staged with `cp.async` (every row's 16-byte pieces in flight at once, a block
/// holding its SM alone backward) and read into fragments with `ldmatrix`, transposed where the
/// product needs the other orientation.
const COMMON: &str = r#"
#define NT (KT / 8)
#define PAD 8

__device__ __forceinline__ unsigned int pack(float lo, float hi) {
    return (unsigned int)bf16_bits(lo) | ((unsigned int)bf16_bits(hi) << 16);
}

__device__ __forceinline__ void mma(float *c, const unsigned int *a, unsigned int b0,
                                    unsigned int b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory, lane l giving the address of row l % 8 of
// matrix l / 8; register i holds matrix i's (row l / 4, columns 2 (l % 4) and the next), or
// transposed (rows 2 (l % 4) and the next, column l / 4).
__device__ __forceinline__ void ldmatrix(unsigned int *r, const unsigned short *p) {
    unsigned int at = (unsigned int)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(at));
}

__device__ __forceinline__ void ldmatrix_transposed(unsigned int *r, const unsigned short *p) {
    unsigned int at = (unsigned int)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(at));
}

// The A fragment of rows [0, 16) and columns [kk, kk + 16) of a row-major [m][k] tile.
__device__ __forceinline__ void a_rows(unsigned int *a, const unsigned short *tile, int stride,
                                       int kk) {
    int l = threadIdx.x & 31, i = l / 8, r = l % 8;
    ldmatrix(a, tile + ((i & 1) * 8 + r) * stride + kk + (i >> 1) * 8);
}

// The A fragment of A = Mᵀ, rows [m0, m0 + 16) and columns [kk, kk + 16), from M stored [k][m].
__device__ __forceinline__ void a_columns(unsigned int *a, const unsigned short *tile,
                                          int stride, int m0, int kk) {
    int l = threadIdx.x & 31, i = l / 8, r = l % 8;
    ldmatrix_transposed(a, tile + (kk + (i >> 1) * 8 + r) * stride + m0 + (i & 1) * 8);
}

// B fragments of two neighbouring n tiles (columns [n0, n0 + 16)) at K [kk, kk + 16): b[0], b[1]
// for the first, b[2], b[3] for the second. `b_rows` reads B = Mᵀ from M stored [n][k],
// `b_columns` reads B stored [k][n].
__device__ __forceinline__ void b_rows(unsigned int *b, const unsigned short *tile, int stride,
                                       int n0, int kk) {
    int l = threadIdx.x & 31, i = l / 8, r = l % 8;
    ldmatrix(b, tile + (n0 + (i >> 1) * 8 + r) * stride + kk + (i & 1) * 8);
}

__device__ __forceinline__ void b_columns(unsigned int *b, const unsigned short *tile,
                                          int stride, int n0, int kk) {
    int l = threadIdx.x & 31, i = l / 8, r = l % 8;
    ldmatrix_transposed(b, tile + (kk + (i & 1) * 8 + r) * stride + n0 + (i >> 1) * 8);
}

// Rows [first, first + rows) of an operand into `to` ([rows][D + PAD]), rows past `last` zero,
// 16 bytes a copy, all in flight until `staged` waits for them.
__device__ __forceinline__ void stage(unsigned short *to, const unsigned short *from,
                                      long long row_stride, int first, int rows, int last) {
    for (int i = threadIdx.x; i < rows * (D / 8); i += blockDim.x) {
        int r = i / (D / 8), c = (i % (D / 8)) * 8;
        bool live = first + r < last;
        const unsigned short *source = from + (live ? (first + r) * row_stride + c : 0);
        unsigned int at = (unsigned int)__cvta_generic_to_shared(to + r * (D + PAD) + c);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                     :: "r"(at), "l"(source), "r"(live ? 16 : 0));
    }
}

// Ends a group of `stage` copies.
__device__ __forceinline__ void commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most `pending` groups of copies are in flight, then for the block.
template <int pending>
__device__ __forceinline__ void staged() {
    asm volatile("cp.async.wait_group %0;\n" :: "n"(pending) : "memory");
    __syncthreads();
}

// acc[NT][4] = the 16 rows of `a` ([16][D + PAD]) times the KT rows of `b` ([KT][D + PAD])
// transposed, over D: the warp's scores (queries times keys) or its context gradient times the
// values.
__device__ __forceinline__ void rows_times_rows(float (*acc)[4], const unsigned short *a,
                                                const unsigned short *b) {
    #pragma unroll
    for (int j = 0; j < NT; j++)
        #pragma unroll
        for (int i = 0; i < 4; i++) acc[j][i] = 0.0f;
    #pragma unroll
    for (int kk = 0; kk < D; kk += 16) {
        unsigned int af[4];
        a_rows(af, a, D + PAD, kk);
        #pragma unroll
        for (int j = 0; j < NT; j += 2) {
            unsigned int bf[4];
            b_rows(bf, b, D + PAD, j * 8, kk);
            mma(acc[j], af, bf[0], bf[1]);
            mma(acc[j + 1], af, bf[2], bf[3]);
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
// scaled and biased, in place.
__device__ __forceinline__ void softmax_rows(float (*s)[4], const float *bias) {
    int t = threadIdx.x & 3;
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
}

// Which of the warp's values the dropout mask keeps: bit j * 4 + i for s[j][i]. `first_row` is
// the warp's first row of attention's probabilities ([batch, heads, queries] flat).
__device__ __forceinline__ unsigned long long draw_mask(long long first_row, unsigned int key0,
                                                        unsigned int key1) {
    int lane = threadIdx.x & 31, g = lane / 4, t = lane & 3;
    unsigned long long keep = 0ull;
#if MASK
    #pragma unroll
    for (int half = 0; half < 2; half++) {
        long long row = first_row + g + 8 * half;
#if SK % 8 == 0
        // Keys j * 8 .. j * 8 + 8 of the row are one Philox counter's 8 values. Lane t of the
        // quad draws the counters j = t, t + 4, ... and keeps each one's 8 bits; a lane's two
        // values of counter j are bits 2t and 2t + 1 of its drawer's.
        unsigned int drawn[(NT + 3) / 4];
        #pragma unroll
        for (int q = 0; q < (NT + 3) / 4; q++) {
            int j = 4 * q + t;
            uint4 w = philox((unsigned int)((row * SK + j * 8) >> 3), STREAM, key0, key1);
            unsigned int words[4] = {w.x, w.y, w.z, w.w}, bits = 0u;
            #pragma unroll
            for (int v = 0; v < 8; v++)
                bits |= (unsigned int)(((words[v / 2] >> (16 * (v & 1))) & 0xffffu) < THRESHOLD) << v;
            drawn[q] = bits;
        }
        #pragma unroll
        for (int j = 0; j < NT; j++) {
            unsigned int bits = __shfl_sync(0xffffffffu, drawn[j / 4], (lane & ~3) | (j & 3));
            keep |= (unsigned long long)((bits >> (2 * t)) & 3u) << (j * 4 + 2 * half);
        }
#else
        #pragma unroll
        for (int j = 0; j < NT; j++)
            #pragma unroll
            for (int c = 0; c < 2; c++) {
                long long e = row * SK + j * 8 + 2 * t + c;
                uint4 w = philox((unsigned int)(e >> 3), STREAM, key0, key1);
                keep |= (unsigned long long)(random_bits(w, (int)(e & 7)) < THRESHOLD)
                        << (j * 4 + 2 * half + c);
            }
#endif
    }
#else
    keep = ~0ull;
#endif
    return keep;
}

// Two neighbouring values of a row of an output, float32 or bf16.
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

__device__ __forceinline__ void clear(float (*acc)[4]) {
    #pragma unroll
    for (int n = 0; n < D / 8; n++)
        #pragma unroll
        for (int i = 0; i < 4; i++) acc[n][i] = 0.0f;
}
"#;

/// A block takes 64 queries of one sequence and head, with all its keys and values.
const FORWARD: &str = r#"
#if OUT_BF16
typedef unsigned short out_t;
#else
typedef float out_t;
#endif

// With KEEP_OUT, the mask bits go to `keep_out` for the backward kernel, each lane's 64 (its
// `draw_mask` word) at [sequence * heads + head][row / 16][lane].
extern "C" __global__ void __launch_bounds__(WARPS * 32) dropbert_kernel(
        out_t *__restrict__ out,
#if KEEP_OUT
        unsigned long long *__restrict__ keep_out,
#endif
        const unsigned short *__restrict__ q, const unsigned short *__restrict__ k,
        const unsigned short *__restrict__ v, const float *__restrict__ bias, unsigned int key0,
        unsigned int key1) {
    __shared__ __align__(16) unsigned short qs[WARPS * 16 * (D + PAD)];
    __shared__ __align__(16) unsigned short ks[KT * (D + PAD)];
    __shared__ __align__(16) unsigned short vs[KT * (D + PAD)];
    const int tiles = (SQ + WARPS * 16 - 1) / (WARPS * 16);
    int bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * WARPS * 16;
    int b = bh / HEADS, h = bh % HEADS;
    // The queries and keys first: the probabilities are computed while the values arrive.
    stage(qs, q + b * Q_BATCH + h * Q_HEAD, Q_ROW, q0, WARPS * 16, SQ);
    stage(ks, k + b * K_BATCH + h * K_HEAD, K_ROW, 0, KT, SK);
    commit();
    stage(vs, v + b * V_BATCH + h * V_HEAD, V_ROW, 0, KT, SK);
    commit();
    staged<1>();
    int warp = threadIdx.x / 32;
    int first = q0 + warp * 16;
    bool live = first < SQ;
    float s[NT][4];
    unsigned long long keep = 0ull;
    if (live) {
        rows_times_rows(s, qs + warp * 16 * (D + PAD), ks);
        softmax_rows(s, bias + b * SK);
        keep = draw_mask((long long)bh * SQ + first, key0, key1);
#if KEEP_OUT
        keep_out[((long long)bh * (SQT / 16) + first / 16) * 32 + (threadIdx.x & 31)] = keep;
#endif
    }
    staged<0>();
    if (!live) return;
    // Probabilities times values: the C fragments of two neighbouring key tiles are the A
    // fragment of one K step.
    float o[D / 8][4];
    clear(o);
    #pragma unroll
    for (int kt = 0; kt < KT / 16; kt++) {
        int j = 2 * kt;
        unsigned int af[4] = {
            pack(s[j][0] * kept(keep, j, 0), s[j][1] * kept(keep, j, 1)),
            pack(s[j][2] * kept(keep, j, 2), s[j][3] * kept(keep, j, 3)),
            pack(s[j + 1][0] * kept(keep, j + 1, 0), s[j + 1][1] * kept(keep, j + 1, 1)),
            pack(s[j + 1][2] * kept(keep, j + 1, 2), s[j + 1][3] * kept(keep, j + 1, 3)),
        };
        #pragma unroll
        for (int n = 0; n < D / 8; n += 2) {
            unsigned int bf[4];
            b_columns(bf, vs, D + PAD, n * 8, kt * 16);
            mma(o[n], af, bf[0], bf[1]);
            mma(o[n + 1], af, bf[2], bf[3]);
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

// acc[D / 8][4] = rows [m0, m0 + 16) of Mᵀ times `b` ([SQT][D + PAD]) over the queries, M
// ([SQT][KT + PAD]) the probabilities or the scores' gradient: the values' or keys' gradient of
// keys m0 .. m0 + 16.
__device__ __forceinline__ void columns_times_columns(float (*acc)[4], const unsigned short *m,
                                                      int m0, const unsigned short *b) {
    clear(acc);
    for (int kk = 0; kk < SQT; kk += 16) {
        unsigned int af[4];
        a_columns(af, m, KT + PAD, m0, kk);
        #pragma unroll
        for (int n = 0; n < D / 8; n += 2) {
            unsigned int bf[4];
            b_columns(bf, b, D + PAD, n * 8, kk);
            mma(acc[n], af, bf[0], bf[1]);
            mma(acc[n + 1], af, bf[2], bf[3]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) dropbert_kernel(
        dq_t *__restrict__ dq, dk_t *__restrict__ dk, dv_t *__restrict__ dv,
        const unsigned short *__restrict__ q, const unsigned short *__restrict__ k,
        const unsigned short *__restrict__ v, const unsigned short *__restrict__ dout,
        const float *__restrict__ bias
#if MASK
        , const unsigned long long *__restrict__ keep_in
#endif
        ) {
    extern __shared__ __align__(16) unsigned short shared[];
    unsigned short *qs = shared;
    unsigned short *dos = qs + SQT * (D + PAD);
    unsigned short *ks = dos + SQT * (D + PAD);
    unsigned short *vs = ks + KT * (D + PAD);
    unsigned short *ps = vs + KT * (D + PAD);
    unsigned short *dss = ps + SQT * (KT + PAD);
    int bh = blockIdx.x, b = bh / HEADS, h = bh % HEADS;
    // The queries and keys first: the probabilities are recomputed while the context gradient
    // and the values arrive.
    stage(qs, q + b * Q_BATCH + h * Q_HEAD, Q_ROW, 0, SQT, SQ);
    stage(ks, k + b * K_BATCH + h * K_HEAD, K_ROW, 0, KT, SK);
    commit();
    stage(dos, dout + b * DO_BATCH + h * DO_HEAD, DO_ROW, 0, SQT, SQ);
    stage(vs, v + b * V_BATCH + h * V_HEAD, V_ROW, 0, KT, SK);
    commit();
    staged<1>();
    int warp = threadIdx.x / 32, g = (threadIdx.x & 31) / 4, t = threadIdx.x & 3;
    int first = warp * 16;
    {
        float s[NT][4], dp[NT][4];
        rows_times_rows(s, qs + first * (D + PAD), ks);
        softmax_rows(s, bias + b * SK);
#if MASK
        // The forward kernel's mask bits, which it drew in the same lanes.
        unsigned long long keep = keep_in[((long long)bh * (SQT / 16) + warp) * 32 + (threadIdx.x & 31)];
#else
        unsigned long long keep = ~0ull;
#endif
        staged<0>();
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
        clear(acc);
        #pragma unroll
        for (int kk = 0; kk < KT; kk += 16) {
            unsigned int af[4];
            a_rows(af, dss + first * (KT + PAD), KT + PAD, kk);
            #pragma unroll
            for (int n = 0; n < D / 8; n += 2) {
                unsigned int bf[4];
                b_columns(bf, ks, D + PAD, n * 8, kk);
                mma(acc[n], af, bf[0], bf[1]);
                mma(acc[n + 1], af, bf[2], bf[3]);
            }
        }
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
    use super::super::attention_shape::tests::bert_base;
    use super::*;

    /// `[batch, seq, heads * dim]` as a `[batch, head, row, dim]` operand.
    pub fn token_major(seq: usize, heads: usize, dim: usize) -> OperandLayout {
        OperandLayout {
            batch: seq * heads * dim,
            head: dim,
            row: heads * dim,
        }
    }

    #[test]
    fn the_header_carries_the_sizes_layouts_and_mask() {
        let layout = token_major(64, 12, 64);
        let text = forward_source(&bert_base(64, 128), [layout; 4], true, true);
        for line in [
            "#define SQ 64\n",
            "#define SK 128\n",
            "#define Q_ROW 768LL\n",
            "#define V_BATCH 49152LL\n",
            "#define MASK 1\n",
            "#define STREAM 7u\n",
            "#define OUT_BF16 1\n",
            "#define KEEP_OUT 1\n",
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
