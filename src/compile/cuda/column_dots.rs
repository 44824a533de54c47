//! Contractions that are column dot products: M = N = 1, fewer outputs than terms, and
//! neighbouring outputs reading neighbouring elements of both operands. A LayerNorm weight's
//! gradient is one: for each of 768 features, the sum over every token of `dy * x_hat`. cuBLAS
//! would run it as a batch of 1 x 1 products.
//!
//! A block sums 32 neighbouring outputs, one per lane, so that reads are coalesced. Its 32 warps
//! take strips of its share of K, added in shared memory. 768 outputs are only 24 blocks, too
//! few to fill a GPU (an H200 has 132 SMs), so K is split into chunks over the grid's second
//! axis. A second kernel adds each output's chunk sums, in chunk order, so results do not vary
//! from run to run, as atomics would make them.
use super::contraction::operand_offsets;
pub use crate::compile::cpu::is_column_dot;
use crate::compile::cpu::AxisStrides;

/// Each chunk takes at least this many terms: 16 a thread.
const MIN_TERMS_PER_CHUNK: usize = 512;
/// At most this many chunks: for BERT-base's 768 features, 24 x 16 = 384 blocks.
const MAX_CHUNKS: usize = 16;

/// How many chunks K of `k` terms is split into.
pub fn chunks(k: usize) -> usize {
    (k / MIN_TERMS_PER_CHUNK).clamp(1, MAX_CHUNKS)
}

/// The first kernel: block `(x, y)` sums outputs `32x..32x + 32` over chunk `y` of K, and writes
/// them at `partial[y * n + o]` (with one chunk, that is the output). With `operand_sum` (0 for
/// `x`, 1 for `y`), it also sums that operand alone, into `operand_partial` alike.
pub fn partial_sums_source(
    loops: &[AxisStrides],
    [_, _, k]: [AxisStrides; 3],
    chunks: usize,
    operand_sum: Option<usize>,
) -> String {
    let offsets = operand_offsets(loops, "        ");
    let (k_size, k_a, k_b) = (k.0, k.1, k.2);
    let chunk = k_size.div_ceil(chunks);
    let (parameter, strips, add, store) = match operand_sum {
        None => Default::default(),
        Some(operand) => (
            "float *operand_partial, ",
            "\n    __shared__ float operand_strips[32][33];",
            format!(" operand_sum += {};", ["xv", "yv"][operand]),
            "\n        for (int strip = 1; strip < 32; strip++) operand_sum += operand_strips[strip][threadIdx.x];\n        operand_partial[(long long)blockIdx.y * n + o] = operand_sum;",
        ),
    };
    let share = if operand_sum.is_some() {
        "\n    operand_strips[threadIdx.y][threadIdx.x] = operand_sum;"
    } else {
        ""
    };
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *partial, {parameter}const float *x, const float *y, int n) {{
    __shared__ float strips[32][33];{strips}
    int o = blockIdx.x * 32 + threadIdx.x;
    long long first = (long long)blockIdx.y * {chunk}LL;
    long long end = min(first + {chunk}LL, {k_size}LL);
    float sum = 0.0f, operand_sum = 0.0f;
    if (o < n) {{
        long long a = 0, b = 0;
{offsets}        for (long long k = first + threadIdx.y; k < end; k += 32) {{
            float xv = x[a + k * {k_a}LL], yv = y[b + k * {k_b}LL];
            sum += xv * yv;{add}
        }}
    }}
    strips[threadIdx.y][threadIdx.x] = sum;{share}
    __syncthreads();
    if (threadIdx.y == 0 && o < n) {{
        for (int strip = 1; strip < 32; strip++) sum += strips[strip][threadIdx.x];
        partial[(long long)blockIdx.y * n + o] = sum;{store}
    }}
}}"#
    )
}

/// The second kernel: one thread an output, adding its `chunks` partial sums in chunk order.
pub fn totals_source(chunks: usize) -> String {
    format!(
        r#"
extern "C" __global__ void dropbert_kernel(float *out, const float *partial, int n) {{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n) return;
    float sum = partial[o];
    for (int chunk = 1; chunk < {chunks}; chunk++) sum += partial[(long long)chunk * n + o];
    out[o] = sum;
}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_norm_weights_gradient_is_summed_by_columns() {
        let (ln_loops, ln_axes) = (
            vec![(768, 1, 1, 1)],
            [(1, 0, 0, 0), (1, 0, 0, 0), (32768, 768, 768, 0)],
        );
        assert!(is_column_dot(&ln_loops, ln_axes, 768));
        // Row sums (more outputs than terms) and matmuls are not.
        let row_sums = [(1, 0, 0, 0), (1, 0, 0, 0), (768, 1, 1, 0)];
        assert!(!is_column_dot(&[(4096, 768, 768, 1)], row_sums, 4096));
        let (loops, axes) = super::super::contraction::tests::batched_plan();
        assert!(!is_column_dot(&loops, axes, 24));
    }

    #[test]
    fn long_columns_are_split_into_chunks_that_fill_the_grid() {
        // BERT-base at 256 x 128 and 32 x 512 tokens: 16 chunks, 384 blocks of 1024 threads.
        assert_eq!(chunks(32768), 16);
        assert_eq!(chunks(16384), 16);
        // The WordNet model's 16 x 128 tokens: 4 chunks of 512.
        assert_eq!(chunks(2048), 4);
        // Short columns stay in one chunk, written straight to the output.
        assert_eq!(chunks(32), 1);
        assert_eq!(chunks(1023), 1);
        let source = partial_sums_source(
            &[(768, 1, 1, 1)],
            [(1, 0, 0, 0), (1, 0, 0, 0), (32768, 768, 768, 0)],
            16,
            None,
        );
        assert!(source.contains("blockIdx.y * 2048LL"), "{source}");
        assert!(source.contains("min(first + 2048LL, 32768LL)"), "{source}");
        assert!(totals_source(16).contains("chunk < 16"));
    }
}
