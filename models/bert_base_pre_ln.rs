//! BERT-base (L12/H768/A12), sequence 128, batch 32: Pre-LN baseline for the layer-dropping variants (the paper's Pre-LN BERT).
dropbert::bert_config! {
    /// BERT-base, Pre-LN baseline for the layer-dropping variants (the paper's Pre-LN BERT).
    pub BertBasePreLn {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PreLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertBasePreLn>()
}
