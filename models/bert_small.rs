//! BERT-small (L4/H512/A8), sequence 128, batch 32.
dropbert::bert_config! {
    /// BERT-small (L4/H512/A8), sequence 128, batch 32.
    pub BertSmall {
        vocab: 30522, hidden: 512, layers: 4, heads: 8, intermediate: 2048,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertSmall>()
}
