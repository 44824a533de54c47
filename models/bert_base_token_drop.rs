//! BERT-base (L12/H768/A12), sequence 128, batch 32: token dropping as Hou et al. (2022) run it: split layer L/2 - 1 = 5, half of the tokens kept.
dropbert::bert_config! {
    /// BERT-base, token dropping as Hou et al. (2022) run it: split layer L/2 - 1 = 5, half of the tokens kept.
    pub BertBaseTokenDrop {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: { layer: 5, kept: 64 }, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertBaseTokenDrop>()
}
