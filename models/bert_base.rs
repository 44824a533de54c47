//! BERT-base (L12/H768/A12), sequence 128, batch 32.
dropbert::bert_config! {
    /// BERT-base (L12/H768/A12), sequence 128, batch 32.
    pub BertBase {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertBase>()
}
