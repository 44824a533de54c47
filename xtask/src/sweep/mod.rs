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

use execute::{collect, execute, stage, Settings, STAGED_BINARY};
use grid::{Grid, DEFAULT_GRID};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The grid (TOML) [default: xtask/grids/default.toml, built in; its comments document the format].
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Where the points train.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// How the points' matrix products run on the GPU (the model binaries' `--matmul`); tf32 and
    /// bf16 need `--backend cuda`.
    #[arg(long, value_enum, default_value_t = Matmul::Fp32)]
    matmul: Matmul,
    /// Training steps of every point, overriding the grid's.
    #[arg(long)]
    steps: Option<u64>,
    /// Output folder [default: sweep/<UTC timestamp>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Build every point and stop: the output folder then holds each point's binary and
    /// `run-points.sh`, which runs them on a machine without a Rust toolchain (a GPU machine);
    /// bring the folder back and finish with `--collect`.
    #[arg(long, conflicts_with = "collect")]
    stage: bool,
    /// Write the tables and the report of a staged sweep (its folder) whose points have run.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["grid", "steps", "out", "backend", "matmul"])]
    collect: Option<PathBuf>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Matmul {
    Fp32,
    Tf32,
    Bf16,
}

impl Matmul {
    pub fn name(self) -> &'static str {
        match self {
            Matmul::Fp32 => "fp32",
            Matmul::Tf32 => "tf32",
            Matmul::Bf16 => "bf16",
        }
    }
}

/// The backend as the report names it: `cuda (bf16 matmuls)` where the products are not fp32.
fn backend_label(backend: Backend, matmul: Matmul) -> String {
    match matmul {
        Matmul::Fp32 => backend.name().to_owned(),
        other => format!("{} ({} matmuls)", backend.name(), other.name()),
    }
}

pub fn run(args: &Args, repo_root: &Path) -> Result<(), String> {
    if let Some(dir) = &args.collect {
        return collect_staged(dir);
    }
    let grid = match &args.grid {
        Some(path) => Grid::load(path)?,
        None => Grid::parse(DEFAULT_GRID, &repo_root.join("xtask").join("grids"))
            .map_err(|e| format!("the built-in grid: {e}"))?,
    };
    if args.steps == Some(0) {
        return Err("--steps must be at least 1".into());
    }
    if args.backend == Backend::Cpu && args.matmul != Matmul::Fp32 {
        return Err(format!(
            "--matmul {} is a GPU mode: add --backend cuda",
            args.matmul.name()
        ));
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
        matmul: args.matmul,
    };
    let clock = Instant::now();
    let mut runs = Vec::new();
    for (index, point) in points.iter().enumerate() {
        eprintln!(
            "[sweep {}/{}] {}: {}",
            index + 1,
            points.len(),
            point.name,
            if args.stage {
                "building"
            } else {
                "building and running"
            }
        );
        let dir = out.join("points").join(&point.name);
        if args.stage {
            let run = stage(point, &dir, &settings);
            if let Some(error) = &run.error.filter(|_| !dir.join(STAGED_BINARY).exists()) {
                eprintln!(
                    "[sweep {}/{}] {}: failed: {error}",
                    index + 1,
                    points.len(),
                    point.name
                );
            }
            continue;
        }
        let run = execute(point, &dir, &settings);
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
    if args.stage {
        return write_stage_script(&out, &points, args.backend, args.matmul);
    }
    let results = results::compute(&runs, grid.run.target_loss);
    let facts = report::Facts::gather(
        command_line(),
        &backend_label(args.backend, args.matmul),
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

/// `run-points.sh`: runs every staged point where the folder was copied, writing what
/// `--collect` reads (the files `execute::run` writes here).
fn write_stage_script(
    out: &Path,
    points: &[point::Point],
    backend: Backend,
    matmul: Matmul,
) -> Result<(), String> {
    let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
    let script = format!(
        r#"#!/usr/bin/env bash
# Runs the points of this staged sweep here (the machine with the {backend} device), then, back on
# the machine with the repository: cargo xtask sweep --collect <this folder>
set -u
cd "$(dirname "$0")"
{{ uname -a; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null; }} >machine.txt
date -u +%s >started.txt
for point in {names}; do
    dir=points/$point
    [ -x "$dir/{binary}" ] || {{ echo "$point: not built (see $dir/build-error.txt)"; continue; }}
    echo "$point: running"
    # A binary built for the device may not start where it was built (no driver there).
    [ -s "$dir/info.json" ] || (cd "$dir" && ./{binary} info --json >info.json 2>/dev/null)
    rm -rf "$dir/run"
    started=$(date +%s.%N)
    (cd "$dir" && ./{binary} pretrain --config run.toml --out run --quiet --backend {backend} --matmul {matmul} >pretrain.log 2>&1)
    echo $? >"$dir/exit-status.txt"
    awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {{ print b - a }}' >"$dir/run-seconds.txt"
    echo "$point: exit $(cat "$dir/exit-status.txt") after $(cat "$dir/run-seconds.txt") s"
done
"#,
        backend = backend.name(),
        matmul = matmul.name(),
        names = names.join(" "),
        binary = STAGED_BINARY,
    );
    let path = out.join("run-points.sh");
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::write(out.join("backend.txt"), backend_label(backend, matmul))
        .map_err(|e| format!("cannot write into {}: {e}", out.display()))?;
    println!(
        "staged {} points in {}: copy the folder to the {} machine, run its run-points.sh there, bring it back and run `cargo xtask sweep --collect {}`",
        points.len(),
        out.display(),
        backend.name(),
        out.display()
    );
    Ok(())
}

/// The report of a staged sweep whose points ran elsewhere.
fn collect_staged(dir: &Path) -> Result<(), String> {
    let grid = Grid::load(&dir.join("grid.toml"))?;
    let backend = std::fs::read_to_string(dir.join("backend.txt"))
        .map_err(|e| format!("{}: not a staged sweep ({e})", dir.display()))?;
    let runs: Vec<_> = point::points(&grid)
        .iter()
        .map(|point| collect(point, &dir.join("points").join(&point.name)))
        .collect();
    let run_seconds: f64 = runs.iter().filter_map(|run| run.run_seconds).sum();
    let results = results::compute(&runs, grid.run.target_loss);
    let mut facts = report::Facts::gather(
        command_line(),
        backend.trim(),
        staged_start(dir),
        run_seconds,
    );
    facts.ran_on = std::fs::read_to_string(dir.join("machine.txt")).ok();
    report::write_all(dir, &facts, &grid.run, &results)?;
    print!("{}", table::text(&results));
    println!(
        "report of {} points in {}",
        results.len(),
        dir.join("report.md").display()
    );
    Ok(())
}

/// When `run-points.sh` began (its `started.txt`, Unix seconds), not when the report is collected.
fn staged_start(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("started.txt"))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(timestamp::format_utc)
        .unwrap_or_else(|| format!("unknown (collected {})", timestamp::now()))
}

/// How the sweep was asked for, as one would type it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}

#[cfg(test)]
mod staged_tests {
    use super::*;

    #[test]
    fn a_staged_script_runs_the_points_with_the_sweeps_matmul_mode() {
        let dir = std::env::temp_dir().join(format!("dropbert-stage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let grid = Grid::parse(DEFAULT_GRID, Path::new("/g")).unwrap();
        write_stage_script(&dir, &point::points(&grid), Backend::Cuda, Matmul::Bf16).unwrap();
        let script = std::fs::read_to_string(dir.join("run-points.sh")).unwrap();
        assert!(
            script.contains(
                "pretrain --config run.toml --out run --quiet --backend cuda --matmul bf16"
            ),
            "{script}"
        );
        let label = std::fs::read_to_string(dir.join("backend.txt")).unwrap();
        assert_eq!(label, "cuda (bf16 matmuls)");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_staged_sweep_starts_when_its_points_ran() {
        let dir = std::env::temp_dir().join(format!("dropbert-staged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(staged_start(&dir).starts_with("unknown (collected "));
        std::fs::write(dir.join("started.txt"), "1764288000\n").unwrap();
        assert_eq!(staged_start(&dir), "2025-11-28T00-00-00");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
