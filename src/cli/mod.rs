//! The command line every model binary shares: `<binary> <subcommand> ...`, each binary compiled
//! for one configuration.
mod bench;
mod grads;
mod hidden;
mod info;
mod pretrain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::BertConfig;

#[derive(Debug, Parser)]
#[command(
    about = "A dropbert model binary, specialized at compile time to one BERT configuration."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode text with a checkpoint and write the last hidden states (no dropping).
    Hidden(hidden::HiddenArgs),
    /// Loss and gradients of one masked-LM batch, under Hugging Face names (with the
    /// configuration's dropping, if any).
    Grads(grads::GradsArgs),
    /// Pretrain with masked-LM on a corpus (default: the embedded WordNet corpus).
    Pretrain(Box<pretrain::PretrainArgs>),
    /// Print the compiled configuration and the cost of a training step.
    Info(info::InfoArgs),
    /// Time full training steps on a random batch (median step time, tokens/s, peak memory).
    Bench(bench::BenchArgs),
}

/// Runs the command line for configuration `C`; errors are printed on one line.
pub fn main<C: BertConfig>() -> ExitCode {
    let cli = Cli::parse();
    match execute::<C>(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command line (`args[0]` is the program name) for configuration `C`, in process.
pub fn run<C: BertConfig>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> crate::Result<()> {
    let cli =
        Cli::try_parse_from(args).map_err(|e| crate::DropbertError::InvalidInput(e.to_string()))?;
    execute::<C>(cli.command)
}

fn execute<C: BertConfig>(command: Command) -> crate::Result<()> {
    match command {
        Command::Hidden(args) => hidden::run::<C>(&args),
        Command::Grads(args) => grads::run::<C>(&args),
        Command::Pretrain(args) => pretrain::run::<C>(&args),
        Command::Info(args) => info::run::<C>(&args),
        Command::Bench(args) => bench::run::<C>(&args),
    }
}
