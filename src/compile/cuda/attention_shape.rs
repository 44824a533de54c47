//! The sizes, layouts and dropout of one fused attention (`attention_fusion` finds them in the
//! graph, `fused_attention_source` compiles them into kernels), and what follows from them: the
//! blocks, warps and shared memory of the kernels.
use crate::ops::DropoutMask;

/// Query rows a warp takes, the M of one `mma`.
pub const WARP_ROWS: usize = 16;
/// Warps of a forward block: 64 queries a block.
pub const FORWARD_WARPS: usize = 4;
/// The most keys (and, backward, queries) a block holds in shared memory.
pub const MAX_SEQUENCE: usize = 128;

/// Where one `[batch, head, row, dim]` operand's elements are: its strides in elements, the head
/// dimension contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperandLayout {
    pub batch: usize,
    pub head: usize,
    pub row: usize,
}

/// What one fused attention computes: `heads` heads of `queries` queries over `keys` keys for
/// each of `batch` sequences, `head_dim` wide; the scores scaled by `scale`, the padding bias
/// `[batch, keys]` added, and the probabilities dropped out by `mask` (over `[batch, heads,
/// queries, keys]`, the flat order of attention's probabilities).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionShape {
    pub batch: usize,
    pub heads: usize,
    pub queries: usize,
    pub keys: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub mask: Option<DropoutMask>,
}

impl AttentionShape {
    /// Keys rounded up to a whole `mma` K step.
    pub fn padded_keys(&self) -> usize {
        self.keys.next_multiple_of(16)
    }

    /// Queries rounded up to whole warps.
    pub fn padded_queries(&self) -> usize {
        self.queries.next_multiple_of(WARP_ROWS)
    }

    /// Forward blocks: one per sequence, head and 64 queries.
    pub fn forward_blocks(&self) -> usize {
        self.batch * self.heads * self.queries.div_ceil(WARP_ROWS * FORWARD_WARPS)
    }

    /// Warps of a backward block, which takes every query of one sequence and head.
    pub fn backward_warps(&self) -> usize {
        self.padded_queries() / WARP_ROWS
    }

    /// 64-bit words of the dropout mask's bits the forward kernel hands the backward one: one a
    /// lane for each 16 queries of each sequence and head.
    pub fn keep_words(&self) -> usize {
        self.batch * self.heads * (self.padded_queries() / WARP_ROWS) * 32
    }

    /// Shared memory of a backward block: queries, context gradient, keys and values staged, and
    /// the probabilities and scores' gradient, in bf16.
    pub fn backward_shared_bytes(&self) -> usize {
        let (sq, sk, d) = (self.padded_queries(), self.padded_keys(), self.head_dim);
        2 * (2 * sq * (d + 8) + 2 * sk * (d + 8) + 2 * sq * (sk + 8))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

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
    fn a_backward_block_of_bert_base_fits_in_an_sm() {
        // 227 KB of shared memory a block on compute capability 9.0.
        assert!(bert_base(128, 128).backward_shared_bytes() <= 227 * 1024);
        assert_eq!(bert_base(128, 128).backward_warps(), 8);
        assert_eq!(bert_base(64, 64).backward_warps(), 4);
        assert_eq!(bert_base(128, 128).forward_blocks(), 256 * 12 * 2);
    }
}
