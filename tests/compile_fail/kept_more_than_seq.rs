// Keeping 80 tokens of a 64-token sequence.
dropbert::bert_config! {
    pub Broken {
        vocab: 1000, hidden: 96, layers: 4, heads: 3, intermediate: 384,
        max_positions: 128, type_vocab: 2, seq: 64, batch: 4,
        layout: PreLn, token_drop: { layer: 1, kept: 80 }, layer_drop: off,
    }
}

fn main() {}
