//! BERT-mini (L4/H256/A4), sequence 128, batch 32.
dropbert::bert_config! {
    /// BERT-mini (L4/H256/A4), sequence 128, batch 32.
    pub BertMini {
        vocab: 30522, hidden: 256, layers: 4, heads: 4, intermediate: 1024,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertMini>()
}
