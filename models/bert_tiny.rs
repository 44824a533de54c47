//! BERT-tiny (L2/H128/A2), sequence 128, batch 32.
dropbert::bert_config! {
    /// BERT-tiny (L2/H128/A2), sequence 128, batch 32.
    pub BertTiny {
        vocab: 30522, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertTiny>()
}
