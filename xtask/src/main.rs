//! dropbert's development tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).

mod build_model;
mod cuda_sdk;
mod example;
mod hf_config;
mod sweep;

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
    /// Make a CUDA root from NVIDIA's wheels (no GPU or toolkit needed); prints `export CUDA_ROOT=...`.
    CudaSdk(cuda_sdk::Args),
    /// The main job: build a model for a bundled checkpoint, encode text, compare with transformers.
    Example,
    /// Build and pretrain every point of a grid (preset x drop method); write tables, plots, a report.
    Sweep(sweep::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::BuildModel(args) => build_model::run(&args).map(|binary| {
            // The last line of stdout, for scripts: everything cargo says goes to stderr.
            println!("{}", binary.display());
        }),
        Task::CudaSdk(args) => cuda_sdk::run(&args, &repo_root()),
        Task::Example => example::run(&repo_root()),
        Task::Sweep(args) => sweep::run(&args, &repo_root()).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's manifest sits one folder below it).
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
