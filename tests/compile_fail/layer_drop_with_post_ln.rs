// Progressive layer dropping with the post-ln block layout.
dropbert::bert_config! {
    pub Broken {
        vocab: 1000, hidden: 96, layers: 4, heads: 3, intermediate: 384,
        max_positions: 128, type_vocab: 2, seq: 64, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: on,
    }
}

fn main() {}
