// 96 is not a multiple of 5 heads.
dropbert::bert_config! {
    pub Broken {
        vocab: 1000, hidden: 96, layers: 4, heads: 5, intermediate: 384,
        max_positions: 128, type_vocab: 2, seq: 64, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() {}
