//! The configurations of the test fixtures, of the WordNet model and of BERT-base in one binary,
//! so that one file carries every check to a machine without a Rust toolchain (a GPU machine):
//! `multi_config <configuration> <subcommand> ...`, e.g.
//! `multi_config token-drop-post-ln grads --checkpoint ... --batch ... --out ... --backend cuda`.
//! Build: `cargo build --release --example multi_config --features cuda` (it runs `--backend cpu`
//! too: the CPU side of `scripts/cuda_check.sh`).
use std::process::ExitCode;

use dropbert::config::BertConfig;

include!("../tests/integration/common/fixture_configs.rs");

// models/bert_tiny_wordnet.rs and models/bert_base.rs.
dropbert::bert_config! {
    pub BertTinyWordnet {
        vocab: 8192, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 16,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub BertBase {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

const CONFIGURATIONS: [&str; 9] = [
    "tiny-post-ln",
    "narrow-3layer",
    "vocab-500",
    "token-drop-post-ln",
    "token-drop-last-split",
    "layer-drop-pre-ln",
    "both-pre-ln",
    "bert-tiny-wordnet",
    "bert-base",
];

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() < 2 || !CONFIGURATIONS.contains(&args[1].as_str()) {
        eprintln!(
            "usage: multi_config <configuration> <subcommand> ...; configurations: {}",
            CONFIGURATIONS.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let configuration = args.remove(1);
    let result = match configuration.as_str() {
        "tiny-post-ln" => run::<TinyPostLn>(args),
        "narrow-3layer" => run::<Narrow3Layer>(args),
        "vocab-500" => run::<Vocab500>(args),
        "token-drop-post-ln" => run::<TokenDropPostLn>(args),
        "token-drop-last-split" => run::<TokenDropLastSplit>(args),
        "layer-drop-pre-ln" => run::<LayerDropPreLn>(args),
        "both-pre-ln" => run::<BothPreLn>(args),
        "bert-tiny-wordnet" => run::<BertTinyWordnet>(args),
        "bert-base" => run::<BertBase>(args),
        _ => unreachable!("checked above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run<C: BertConfig>(args: Vec<String>) -> dropbert::Result<()> {
    dropbert::cli::run::<C>(args)
}
