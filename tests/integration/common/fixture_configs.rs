// The compiled configurations of the test fixtures, one `bert_config!` each. Included by
// tests/integration/common and by examples/multi_config (which carries them to a GPU machine), so that both
// compile exactly these.

// The dimensions of the fixture checkpoints tests/fixtures/hf/{tiny_post_ln,narrow_3layer}
// (and their copies under tests/fixtures/grads/), compiled at the batch sizes the tests use.
dropbert::bert_config! {
    pub TinyPostLn {
        vocab: 512, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub Narrow3Layer {
        vocab: 512, hidden: 48, layers: 3, heads: 4, intermediate: 80,
        max_positions: 40, type_vocab: 3, seq: 24, batch: 3,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

// tiny_post_ln cut to 500 tokens (tests/fixtures/grads/vocab_500): a vocabulary off the
// logit-width multiple, so the decoder runs over 12 padding columns.
dropbert::bert_config! {
    pub Vocab500 {
        vocab: 500, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

// The checkpoints of tests/fixtures/drops/ (scripts/make_drop_fixtures.py).
dropbert::bert_config! {
    pub TokenDropPostLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: { layer: 1, kept: 8 }, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub TokenDropLastSplit {
        vocab: 512, hidden: 32, layers: 3, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: { layer: 1, kept: 5 }, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub LayerDropPreLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

dropbert::bert_config! {
    pub BothPreLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: { layer: 1, kept: 8 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}
