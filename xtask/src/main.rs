//! dropbert's development tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).

mod build_model;
mod hf_config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "dropbert's development tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Generate and build a model binary from a Hugging Face `config.json`.
    BuildModel(build_model::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::BuildModel(args) => build_model::run(&args).map(|binary| {
            // The last line of stdout, for scripts: everything cargo says goes to stderr.
            println!("{}", binary.display());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
