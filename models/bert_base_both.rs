//! BERT-base (L12/H768/A12), sequence 128, batch 32: both methods at once (Pre-LN; split layer 5, 64 of 128 tokens kept; theta_bar 0.5, gamma 0.001).
dropbert::bert_config! {
    /// BERT-base, both methods at once (Pre-LN; split layer 5, 64 of 128 tokens kept; theta_bar 0.5, gamma 0.001).
    pub BertBaseBoth {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PreLn, token_drop: { layer: 5, kept: 64 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertBaseBoth>()
}
