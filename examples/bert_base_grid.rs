//! The BERT-base configurations of the GPU benchmark table (docs/perf.md) in one binary, so that
//! one file carries them to a GPU machine without a Rust toolchain:
//! `bert_base_grid <configuration> bench --backend cuda ...`. Two shapes, batch 256 x seq 128
//! and batch 32 x seq 512; for each, the Post-LN baseline, token dropping (split layer 5, half of
//! the tokens kept, as Hou et al. run BERT-base), the Pre-LN baseline, layer dropping (Pre-LN,
//! theta_bar 0.5) and both methods (Pre-LN).
//! Build: `cargo build --release --example bert_base_grid --features cuda`.
use std::process::ExitCode;

macro_rules! grid {
    ($($name:literal => $ty:ident { seq: $seq:literal, batch: $batch:literal, layout: $layout:ident, token_drop: $td:tt, layer_drop: $ld:tt },)*) => {
        $(dropbert::bert_config! {
            pub $ty {
                vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
                max_positions: 512, type_vocab: 2, seq: $seq, batch: $batch,
                layout: $layout, token_drop: $td, layer_drop: $ld,
            }
        })*

        const CONFIGURATIONS: &[&str] = &[$($name),*];

        fn run(configuration: &str, args: Vec<String>) -> dropbert::Result<()> {
            match configuration {
                $($name => dropbert::cli::run::<$ty>(args),)*
                _ => unreachable!("checked by main"),
            }
        }
    };
}

grid! {
    "base-256x128" => Base256x128 { seq: 128, batch: 256, layout: PostLn, token_drop: off, layer_drop: off },
    "token-drop-256x128" => TokenDrop256x128 { seq: 128, batch: 256, layout: PostLn, token_drop: { layer: 5, kept: 64 }, layer_drop: off },
    "pre-ln-256x128" => PreLn256x128 { seq: 128, batch: 256, layout: PreLn, token_drop: off, layer_drop: off },
    "layer-drop-256x128" => LayerDrop256x128 { seq: 128, batch: 256, layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 } },
    "both-256x128" => Both256x128 { seq: 128, batch: 256, layout: PreLn, token_drop: { layer: 5, kept: 64 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 } },
    "base-32x512" => Base32x512 { seq: 512, batch: 32, layout: PostLn, token_drop: off, layer_drop: off },
    "token-drop-32x512" => TokenDrop32x512 { seq: 512, batch: 32, layout: PostLn, token_drop: { layer: 5, kept: 256 }, layer_drop: off },
    "pre-ln-32x512" => PreLn32x512 { seq: 512, batch: 32, layout: PreLn, token_drop: off, layer_drop: off },
    "layer-drop-32x512" => LayerDrop32x512 { seq: 512, batch: 32, layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 } },
    "both-32x512" => Both32x512 { seq: 512, batch: 32, layout: PreLn, token_drop: { layer: 5, kept: 256 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 } },
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() < 2 || !CONFIGURATIONS.contains(&args[1].as_str()) {
        eprintln!(
            "usage: bert_base_grid <configuration> <subcommand> ...; configurations: {}",
            CONFIGURATIONS.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let configuration = args.remove(1);
    match run(&configuration, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
