//! `cargo xtask sweep`: builds and pretrains every point of a grid (preset x drop method), then
//! writes tables, plots and a report comparing each point with its preset's baseline.

mod execute;
mod grid;
mod info;
mod method;
mod metrics;
mod point;
mod report;
mod results;
mod svg_plot;
mod table;
mod timestamp;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;

use execute::{execute, Settings};
use grid::{Grid, DEFAULT_GRID};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The grid (TOML) [default: xtask/grids/default.toml, built in; its comments document the format].
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Where the points train.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Training steps of every point, overriding the grid's.
    #[arg(long)]
    steps: Option<u64>,
    /// Output folder [default: sweep/<UTC timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Cpu,
    /// Builds the binaries with `--features cuda`.
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }
}

pub fn run(args: &Args, repo_root: &Path) -> Result<(), String> {
    let grid = match &args.grid {
        Some(path) => Grid::load(path)?,
        None => Grid::parse(DEFAULT_GRID, &repo_root.join("xtask").join("grids"))
            .map_err(|e| format!("the built-in grid: {e}"))?,
    };
    if args.steps == Some(0) {
        return Err("--steps must be at least 1".into());
    }
    let started = timestamp::now();
    let out = match &args.out {
        Some(out) => out.clone(),
        None => repo_root.join("sweep").join(&started),
    };
    let out = std::path::absolute(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let grid_text = match &args.grid {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{e}"))?,
        None => DEFAULT_GRID.to_owned(),
    };
    std::fs::write(out.join("grid.toml"), grid_text)
        .map_err(|e| format!("cannot write the grid into {}: {e}", out.display()))?;

    let points = point::points(&grid);
    let settings = Settings {
        run: &grid.run,
        steps: args.steps,
        backend: args.backend,
    };
    let clock = Instant::now();
    let mut runs = Vec::new();
    for (index, point) in points.iter().enumerate() {
        eprintln!(
            "[sweep {}/{}] {}: building and running",
            index + 1,
            points.len(),
            point.name
        );
        let run = execute(point, &out.join("points").join(&point.name), &settings);
        match &run.error {
            None => eprintln!("[sweep {}/{}] {}: ok", index + 1, points.len(), point.name),
            Some(error) => eprintln!(
                "[sweep {}/{}] {}: failed: {error}",
                index + 1,
                points.len(),
                point.name
            ),
        }
        runs.push(run);
    }
    let results = results::compute(&runs, grid.run.target_loss);
    let facts = report::Facts::gather(
        command_line(),
        args.backend.name(),
        started,
        clock.elapsed().as_secs_f64(),
    );
    report::write_all(&out, &facts, &grid.run, &results)?;
    print!("{}", table::text(&results));
    println!(
        "sweep of {} points took {:.0} s; report in {}",
        results.len(),
        facts.sweep_seconds,
        out.join("report.md").display()
    );
    Ok(())
}

/// How the sweep was asked for, as one would type it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}
