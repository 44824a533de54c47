//! Fewer, larger cuBLAS calls for one contraction. The CPU's plan keeps every output axis beyond
//! M and N as a loop; on the GPU each host-side loop iteration is a launch, so BERT-base's
//! attention products (loops over 256 sequences and 12 heads, batched over the heads) were 256
//! small calls each. Here loops are folded into M or N where the operands lay them out as its
//! continuation (a linear layer's batch loop: one GEMM over every token), adjacent loops whose
//! strides allow it become one, and the largest loop left goes last. A plan left with one loop
//! runs as one strided batched call; one left with several runs as one pointer-array call over
//! all of them (`gemm_pointers`), for which the loops' order no longer matters.
use crate::compile::cpu::AxisStrides;

/// `loops` and `[m, n, k]` rewritten to describe the same products with fewer calls.
pub fn fewer_gemm_calls(
    loops: &[AxisStrides],
    [mut m, mut n, k]: [AxisStrides; 3],
) -> (Vec<AxisStrides>, [AxisStrides; 3]) {
    let mut loops: Vec<AxisStrides> = loops.iter().copied().filter(|l| l.0 != 1).collect();
    // Index i of the loop and j of the axis as one index i * size + j of a larger axis.
    let continues = |outer: AxisStrides, inner: AxisStrides| {
        inner.0 > 1
            && outer.1 == inner.0 * inner.1
            && outer.2 == inner.0 * inner.2
            && outer.3 == inner.0 * inner.3
    };
    let merge =
        |outer: AxisStrides, inner: AxisStrides| (outer.0 * inner.0, inner.1, inner.2, inner.3);
    loop {
        if let Some(at) = loops.iter().position(|&l| continues(l, m)) {
            m = merge(loops.remove(at), m);
        } else if let Some(at) = loops.iter().position(|&l| continues(l, n)) {
            n = merge(loops.remove(at), n);
        } else if let Some((i, j)) = (0..loops.len())
            .flat_map(|i| (0..loops.len()).map(move |j| (i, j)))
            .find(|&(i, j)| i != j && continues(loops[i], loops[j]))
        {
            let merged = merge(loops[i], loops[j]);
            loops[j] = merged;
            loops.remove(i);
        } else {
            break;
        }
    }
    if let Some(largest) = (0..loops.len()).max_by_key(|&i| loops[i].0) {
        let batched = loops.remove(largest);
        loops.push(batched);
    }
    (loops, [m, n, k])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every (a, b, out) offset triple the description multiplies and adds.
    fn products(loops: &[AxisStrides], axes: [AxisStrides; 3]) -> BTreeSet<(usize, usize, usize)> {
        let mut triples = BTreeSet::from([(0, 0, 0)]);
        for &(size, a, b, out) in loops.iter().chain(axes.iter()) {
            triples = triples
                .iter()
                .flat_map(|&(ta, tb, to)| {
                    (0..size).map(move |i| (ta + i * a, tb + i * b, to + i * out))
                })
                .collect();
        }
        triples
    }

    #[test]
    fn a_linear_layers_batch_loop_folds_into_m() {
        // x [4, 8, 16] (rows of 16) times w^T [16 -> 6]: out [4, 8, 6].
        let loops = vec![(4, 128, 0, 48)];
        let axes = [(8, 16, 0, 6), (6, 0, 16, 1), (16, 1, 1, 0)];
        let (folded, folded_axes) = fewer_gemm_calls(&loops, axes);
        assert!(folded.is_empty());
        assert_eq!(folded_axes[0], (32, 16, 0, 6));
        assert_eq!(products(&loops, axes), products(&folded, folded_axes));
    }

    #[test]
    fn attention_batches_over_the_sequences_not_the_heads() {
        // q [4 batch, 5 seq, 3 heads, 4 dim] (interleaved heads) times k likewise: scores
        // [4, 3, 5, 5] contiguous.
        let loops = vec![(4, 60, 60, 75), (3, 4, 4, 25)];
        let axes = [(5, 12, 0, 5), (5, 0, 12, 1), (4, 1, 1, 0)];
        let (reordered, same_axes) = fewer_gemm_calls(&loops, axes);
        assert_eq!(reordered, vec![(3, 4, 4, 25), (4, 60, 60, 75)]);
        assert_eq!(products(&loops, axes), products(&reordered, same_axes));
    }

    #[test]
    fn adjacent_loops_merge_where_their_strides_continue() {
        let loops = vec![(2, 30, 0, 10), (5, 6, 0, 2)];
        let axes = [(1, 0, 0, 0), (2, 0, 1, 1), (6, 1, 2, 0)];
        let (merged, merged_axes) = fewer_gemm_calls(&loops, axes);
        assert_eq!(merged.len(), 1);
        assert_eq!(products(&loops, axes), products(&merged, merged_axes));
    }
}
