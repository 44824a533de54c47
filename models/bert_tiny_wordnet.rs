//! BERT-tiny (L2/H128/A2) sized for the embedded WordNet corpus: its 8192-token vocabulary,
//! sequence 128, batch 16. The README's main job pretrains it on the CPU.
dropbert::bert_config! {
    /// BERT-tiny on the embedded WordNet corpus.
    pub BertTinyWordnet {
        vocab: 8192, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 16,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<BertTinyWordnet>()
}
