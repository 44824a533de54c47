// With 4 layers the split layer must be at most 2 (the last layer sees all tokens again).
dropbert::bert_config! {
    pub Broken {
        vocab: 1000, hidden: 96, layers: 4, heads: 3, intermediate: 384,
        max_positions: 128, type_vocab: 2, seq: 64, batch: 4,
        layout: PreLn, token_drop: { layer: 3, kept: 32 }, layer_drop: off,
    }
}

fn main() {}
