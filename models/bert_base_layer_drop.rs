//! BERT-base (L12/H768/A12), sequence 128, batch 32: progressive layer dropping as Zhang and He (2020) run it: Pre-LN, theta_bar 0.5, gamma 0.001 (DeepSpeed's defaults).
dropbert::bert_config! {
    /// BERT-base, progressive layer dropping as Zhang and He (2020) run it: Pre-LN, theta_bar 0.5, gamma 0.001 (DeepSpeed's defaults).
    pub BertBaseLayerDrop {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertBaseLayerDrop>()
}
