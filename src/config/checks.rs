use super::{BertDims, BlockLayout};

/// Checks a configuration; evaluated in a `const` item by [`bert_config!`](crate::bert_config), so
/// an invalid configuration is a compile error whose text is the message below.
pub const fn validate(dims: &BertDims) {
    assert!(dims.vocab_size > 0, "vocab size must be at least 1");
    assert!(dims.hidden_size > 0, "hidden size must be at least 1");
    assert!(dims.num_layers > 0, "the encoder needs at least one layer");
    assert!(
        dims.num_heads > 0,
        "the number of attention heads must be at least 1"
    );
    assert!(
        dims.hidden_size.is_multiple_of(dims.num_heads),
        "the number of attention heads must divide the hidden size"
    );
    assert!(
        dims.intermediate_size > 0,
        "intermediate size must be at least 1"
    );
    assert!(
        dims.type_vocab_size > 0,
        "type vocab size must be at least 1"
    );
    assert!(dims.seq_len > 0, "sequence length must be at least 1");
    assert!(
        dims.seq_len <= dims.max_positions,
        "sequence length must not exceed max positions"
    );
    assert!(dims.batch_size > 0, "batch size must be at least 1");
    if let Some(drop) = dims.token_drop {
        assert!(
            drop.drop_layer + 1 < dims.num_layers,
            "token drop layer must lie inside the encoder, before its last layer"
        );
        assert!(drop.kept_tokens > 0, "kept tokens must be at least 1");
        assert!(
            drop.kept_tokens <= dims.seq_len,
            "kept tokens must not exceed the sequence length"
        );
    }
    if let Some(drop) = dims.layer_drop {
        assert!(
            drop.theta_bar > 0.0 && drop.theta_bar <= 1.0,
            "layer drop theta_bar must lie in (0, 1]"
        );
        assert!(drop.gamma >= 0.0, "layer drop gamma must not be negative");
        assert!(
            matches!(dims.layout, BlockLayout::PreLn),
            "progressive layer dropping needs the pre-ln block layout"
        );
    }
}
