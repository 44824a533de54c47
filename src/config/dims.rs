use super::BlockLayout;

/// Token-dropping settings of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDropDims {
    /// 0-based index of the split layer: its queries are the kept tokens, its keys and values all
    /// tokens. Layers after it up to the last one see only the kept tokens.
    pub drop_layer: usize,
    /// Tokens kept per sequence in the middle layers.
    pub kept_tokens: usize,
}

/// Progressive-layer-dropping defaults of a configuration: the keep schedule
/// `theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar` (a run's `[layer_drop]` may override them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDropDims {
    pub theta_bar: f32,
    pub gamma: f32,
}

impl LayerDropDims {
    /// DeepSpeed's defaults.
    pub const DEEPSPEED: Self = Self {
        theta_bar: 0.5,
        gamma: 0.001,
    };
}

/// The numbers of a [`BertConfig`](super::BertConfig), readable at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertDims {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    pub layout: BlockLayout,
    pub token_drop: Option<TokenDropDims>,
    pub layer_drop: Option<LayerDropDims>,
}

/// The decoder's logits are this many columns wide at a multiple: cuBLAS runs the products over a
/// vocabulary of 30522 three times slower than over 30528 (run 37, `docs/perf.md`).
pub const LOGIT_WIDTH_MULTIPLE: usize = 64;

impl BertDims {
    /// The width of the masked-LM logits: the vocabulary rounded up to [`LOGIT_WIDTH_MULTIPLE`].
    /// The columns past the vocabulary come from zero rows the head appends to the (tied) word
    /// embeddings; the loss and the accuracy ignore them, and no parameter or checkpoint has them.
    pub const fn logit_width(&self) -> usize {
        self.vocab_size.next_multiple_of(LOGIT_WIDTH_MULTIPLE)
    }

    /// `hidden / heads`; 0 where heads is 0, so that the readable check of
    /// [`validate`](super::validate) reports the error rather than a division by zero.
    pub const fn head_dim(&self) -> usize {
        match self.hidden_size.checked_div(self.num_heads) {
            Some(head_dim) => head_dim,
            None => 0,
        }
    }

    pub const fn kept_tokens(&self) -> usize {
        match self.token_drop {
            Some(drop) => drop.kept_tokens,
            None => self.seq_len,
        }
    }

    /// Most masked-LM predictions per sequence: `ceil(0.15 * seq)`, at least 1.
    pub const fn max_predictions_per_sequence(&self) -> usize {
        let per_sequence = (self.seq_len * 15).div_ceil(100);
        if per_sequence == 0 {
            1
        } else {
            per_sequence
        }
    }

    /// Most masked-LM predictions per batch.
    pub const fn max_predictions(&self) -> usize {
        self.batch_size * self.max_predictions_per_sequence()
    }

    pub const fn dropped_tokens(&self) -> usize {
        self.seq_len.saturating_sub(self.kept_tokens())
    }
}
