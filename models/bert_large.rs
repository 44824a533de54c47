//! BERT-large (L24/H1024/A16), sequence 128, batch 32.
dropbert::bert_config! {
    /// BERT-large (L24/H1024/A16), sequence 128, batch 32.
    pub BertLarge {
        vocab: 30522, hidden: 1024, layers: 24, heads: 16, intermediate: 4096,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertLarge>()
}
