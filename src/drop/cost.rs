use crate::config::BertDims;

/// Which tokens each block of one training step processes: `(queries, keys)` per sequence, or
/// `None` for a block gated off.
#[derive(Debug, Clone, PartialEq)]
pub struct StepShape {
    pub blocks: Vec<Option<(usize, usize)>>,
}

impl StepShape {
    /// The blocks of a step of `dims` with the gates `on` (all on without layer dropping).
    pub fn new(dims: &BertDims, on: &[bool]) -> Self {
        assert_eq!(on.len(), dims.num_layers, "one gate per block");
        let (seq, last) = (dims.seq_len, dims.num_layers - 1);
        let blocks = (0..dims.num_layers)
            .map(|index| {
                let tokens = match dims.token_drop {
                    Some(drop) if index == drop.drop_layer => (drop.kept_tokens, seq),
                    Some(drop) if index > drop.drop_layer && index < last => {
                        (drop.kept_tokens, drop.kept_tokens)
                    }
                    _ => (seq, seq),
                };
                on[index].then_some(tokens)
            })
            .collect();
        Self { blocks }
    }

    /// Every block on, every token kept: the baseline of the same dimensions.
    pub fn full(dims: &BertDims) -> Self {
        let plain = BertDims {
            token_drop: None,
            ..*dims
        };
        Self::new(&plain, &vec![true; dims.num_layers])
    }
}

/// The matrix-multiply FLOPs of one training step (forward, backward of activations and of
/// weights: three times the forward's), counted as 2 per multiply-add. Elementwise work,
/// reductions and the optimizer update are not counted: they are linear in the parameter and
/// activation counts and small beside the matmuls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCost {
    pub forward_flops: f64,
}

impl StepCost {
    pub fn of(dims: &BertDims, shape: &StepShape) -> Self {
        let (b, h, i) = (
            dims.batch_size as f64,
            dims.hidden_size as f64,
            dims.intermediate_size as f64,
        );
        let blocks: f64 = shape
            .blocks
            .iter()
            .flatten()
            .map(|&(queries, keys)| {
                let (q, k) = (b * queries as f64, b * keys as f64);
                let projections = 2.0 * q * h * h * 2.0 + 2.0 * k * h * h * 2.0;
                let attention = 2.0 * (2.0 * q * keys as f64 * h);
                let feed_forward = 2.0 * (2.0 * q * h * i);
                projections + attention + feed_forward
            })
            .sum();
        let predictions = dims.max_predictions() as f64;
        let head = 2.0 * predictions * h * h + 2.0 * predictions * h * dims.vocab_size as f64;
        Self {
            forward_flops: blocks + head,
        }
    }

    /// The expected cost of a step whose block `i` runs with probability `keep[i]`.
    pub fn expected(dims: &BertDims, keep: &[f64]) -> Self {
        let head = Self::of(dims, &StepShape::new(dims, &vec![false; dims.num_layers]));
        let blocks: f64 = (0..dims.num_layers)
            .map(|index| {
                let mut only = vec![false; dims.num_layers];
                only[index] = true;
                let one = Self::of(dims, &StepShape::new(dims, &only)).forward_flops;
                keep[index] * (one - head.forward_flops)
            })
            .sum();
        Self {
            forward_flops: head.forward_flops + blocks,
        }
    }

    pub fn training_flops(&self) -> f64 {
        3.0 * self.forward_flops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BlockLayout, TokenDropDims};

    fn dims(token_drop: Option<TokenDropDims>) -> BertDims {
        BertDims {
            vocab_size: 1000,
            hidden_size: 64,
            num_layers: 4,
            num_heads: 4,
            intermediate_size: 256,
            max_positions: 128,
            type_vocab_size: 2,
            seq_len: 64,
            batch_size: 2,
            layout: BlockLayout::PreLn,
            token_drop,
            layer_drop: None,
        }
    }

    #[test]
    fn token_dropping_shrinks_the_middle_layers_only() {
        let token_drop = Some(TokenDropDims {
            drop_layer: 1,
            kept_tokens: 32,
        });
        let shape = StepShape::new(&dims(token_drop), &[true; 4]);
        assert_eq!(
            shape.blocks,
            vec![
                Some((64, 64)),
                Some((32, 64)),
                Some((32, 32)),
                Some((64, 64))
            ]
        );
        let full = StepCost::of(&dims(None), &StepShape::full(&dims(None)));
        let dropped = StepCost::of(&dims(token_drop), &shape);
        assert!(dropped.forward_flops < full.forward_flops);
        let all_kept = Some(TokenDropDims {
            drop_layer: 1,
            kept_tokens: 64,
        });
        let same = StepCost::of(
            &dims(all_kept),
            &StepShape::new(&dims(all_kept), &[true; 4]),
        );
        assert_eq!(same, full);
    }

    #[test]
    fn a_gated_off_block_costs_nothing() {
        let d = dims(None);
        let all = StepCost::of(&d, &StepShape::new(&d, &[true; 4]));
        let three = StepCost::of(&d, &StepShape::new(&d, &[true, false, true, true]));
        let none = StepCost::of(&d, &StepShape::new(&d, &[false; 4]));
        let per_block = all.forward_flops - three.forward_flops;
        assert!((all.forward_flops - none.forward_flops - 4.0 * per_block).abs() < 1.0);
    }
}
