//! One point in three phases, each leaving files in the point's folder: `build` (`config.json`,
//! `run.toml`, `build-seconds.txt`, `info.json`, `binary.txt`, or `build-error.txt`), `run`
//! (`pretrain.log`, `run/metrics.jsonl`, `run-seconds.txt`, `exit-status.txt`) and `collect`,
//! which reads a [`PointRun`] back from those files. A sweep here does all three; a staged sweep
//! builds here, runs on another machine (`run-points.sh`, which writes the same files) and
//! collects here.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::grid::RunSettings;
use super::info::Info;
use super::metrics::RunLog;
use super::point::Point;
use super::{Backend, Matmul};
use crate::build_model;

/// What building and running a point gave; `error` says where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRun {
    pub point: Point,
    pub dir: PathBuf,
    pub binary: Option<PathBuf>,
    pub build_seconds: Option<f64>,
    pub info: Info,
    pub log: RunLog,
    /// The whole `pretrain` process, compiling its graph and validating included.
    pub run_seconds: Option<f64>,
    pub error: Option<String>,
}

pub struct Settings<'a> {
    pub run: &'a RunSettings,
    pub steps: Option<u64>,
    pub backend: Backend,
    pub matmul: Matmul,
}

/// The model binary's name in a staged point's folder.
pub const STAGED_BINARY: &str = "model";

/// Builds, runs and collects a point here.
pub fn execute(point: &Point, dir: &Path, settings: &Settings) -> PointRun {
    if let Some(binary) = build(point, dir, settings) {
        run(&binary, dir, settings.backend, settings.matmul);
    }
    collect(point, dir)
}

/// Builds a point and copies its binary into its folder, to run elsewhere; the copy loses its
/// debug information where `strip` is installed (a seventh of the size, for the trip).
pub fn stage(point: &Point, dir: &Path, settings: &Settings) -> PointRun {
    if let Some(binary) = build(point, dir, settings) {
        let staged = dir.join(STAGED_BINARY);
        let copied = std::fs::copy(&binary, &staged)
            .map_err(|e| {
                format!(
                    "cannot copy {} into {}: {e}",
                    binary.display(),
                    dir.display()
                )
            })
            .and_then(|_| {
                let _ = Command::new("strip")
                    .arg("--strip-debug")
                    .arg(&staged)
                    .status();
                write(&dir.join("binary.txt"), &staged.display().to_string())
            });
        if let Err(error) = copied {
            let _ = write(&dir.join("build-error.txt"), &error);
        }
    }
    collect(point, dir)
}

/// The point's binary, or `None` with `build-error.txt` written.
fn build(point: &Point, dir: &Path, settings: &Settings) -> Option<PathBuf> {
    let built = (|| {
        // A rebuild into the same folder starts from nothing.
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let config_json = dir.join("config.json");
        write(&config_json, &point.config_json())?;
        write(
            &dir.join("run.toml"),
            &point.run_toml(settings.run, settings.steps),
        )?;
        let args = point.build_args(config_json, settings.backend == Backend::Cuda)?;
        let started = Instant::now();
        let binary = build_model::run(&args);
        write(
            &dir.join("build-seconds.txt"),
            &started.elapsed().as_secs_f64().to_string(),
        )?;
        let binary = binary.map_err(|e| format!("build: {e}"))?;
        write(&dir.join("binary.txt"), &binary.display().to_string())?;
        if let Some(json) = Info::json_of(&binary) {
            write(&dir.join("info.json"), &json)?;
        }
        Ok::<_, String>(binary)
    })();
    match built {
        Ok(binary) => Some(binary),
        Err(error) => {
            let _ = write(&dir.join("build-error.txt"), &error);
            None
        }
    }
}

/// Pretrains the point with its `run.toml`, as `run-points.sh` does elsewhere.
fn run(binary: &Path, dir: &Path, backend: Backend, matmul: Matmul) {
    let result = (|| {
        let out = dir.join("run");
        let log_path = dir.join("pretrain.log");
        let log_file = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_file_too = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let started = Instant::now();
        let status = Command::new(binary)
            .arg("pretrain")
            .arg("--config")
            .arg(dir.join("run.toml"))
            .arg("--out")
            .arg(&out)
            .arg("--quiet")
            .args(["--backend", backend.name()])
            .args(["--matmul", matmul.name()])
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_file_too))
            .status()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        write(
            &dir.join("run-seconds.txt"),
            &started.elapsed().as_secs_f64().to_string(),
        )?;
        Ok::<_, String>(status.to_string())
    })();
    let status = result.unwrap_or_else(|error| error);
    let _ = write(&dir.join("exit-status.txt"), &status);
}

/// Reads what the phases left in a point's folder.
pub fn collect(point: &Point, dir: &Path) -> PointRun {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let number = |name: &str| read(name).and_then(|text| text.trim().parse::<f64>().ok());
    let mut result = PointRun {
        point: point.clone(),
        dir: dir.to_owned(),
        binary: read("binary.txt").map(|text| PathBuf::from(text.trim())),
        build_seconds: number("build-seconds.txt"),
        info: read("info.json")
            .and_then(|json| serde_json::from_str(&json).ok())
            .map(|value| Info::from_json(&value))
            .unwrap_or_default(),
        log: RunLog::default(),
        run_seconds: number("run-seconds.txt"),
        error: None,
    };
    if let Err(error) = read_run(&mut result, &read) {
        result.error = Some(error);
    }
    result
}

fn read_run(result: &mut PointRun, read: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    if let Some(error) = read("build-error.txt") {
        return Err(error.trim().to_owned());
    }
    // A failed run's metrics so far still count.
    let metrics = result.dir.join("run").join("metrics.jsonl");
    if let Some(text) = read("run/metrics.jsonl") {
        result.log = RunLog::parse(&text)?;
    }
    let status = read("exit-status.txt")
        .ok_or("not run: no exit-status.txt (a staged sweep runs its points with run-points.sh)")?;
    let status = status.trim();
    if !(status == "0" || status == "exit status: 0") {
        let log = read("pretrain.log").unwrap_or_default();
        return Err(format!("run: {}", failure_line(&log, status)));
    }
    if result.log.final_validation().is_none() {
        return Err(format!("run: no validation in {}", metrics.display()));
    }
    Ok(())
}

/// The binary's own `error: ...` line, else a panic's message, else the last line it printed,
/// else the exit status.
fn failure_line(log: &str, status: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error = lines.iter().rev().find_map(|l| l.strip_prefix("error: "));
    let panic = || {
        let at = lines.iter().position(|l| l.contains("panicked at"))?;
        Some(lines[at..(at + 2).min(lines.len())].join(" "))
    };
    error
        .map(str::to_owned)
        .or_else(panic)
        .or(lines.last().map(|l| l.to_string()))
        .map(|l| format!("{l} ({status})"))
        .unwrap_or_else(|| status.to_owned())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::grid::{Grid, DEFAULT_GRID};
    use crate::sweep::point::points;

    const METRICS: &str = r#"{"event":"validation","step":0,"loss":9.0,"accuracy":0.0,"predictions":10}
{"event":"train","step":1,"loss":9.0,"learning_rate":0.001,"grad_norm":1.0,"tokens_per_second":100.0,"step_seconds":1.0,"flops":1e9}
{"event":"validation","step":1,"loss":8.0,"accuracy":0.1,"predictions":10}
"#;

    #[test]
    fn collect_reads_back_what_the_phases_wrote() {
        let grid = Grid::parse(DEFAULT_GRID, Path::new("/g")).unwrap();
        let point = &points(&grid)[0];
        let dir = std::env::temp_dir().join(format!("dropbert-collect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let put = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        put("build-seconds.txt", "12.5");
        put("binary.txt", "/staged/model\n");
        put(
            "info.json",
            r#"{"configuration":"M","parameters":7,"flops_per_step":2e9}"#,
        );

        let not_run = collect(point, &dir);
        assert!(not_run.error.as_deref().unwrap().starts_with("not run"));
        assert_eq!(not_run.build_seconds, Some(12.5));
        assert_eq!(not_run.binary, Some(PathBuf::from("/staged/model")));
        assert_eq!(not_run.info.parameters, Some(7));

        put("run/metrics.jsonl", METRICS);
        put("run-seconds.txt", "3.25\n");
        put("exit-status.txt", "0\n");
        let ran = collect(point, &dir);
        assert_eq!(ran.error, None);
        assert_eq!(ran.run_seconds, Some(3.25));
        assert_eq!(ran.log.final_validation().unwrap().loss, 8.0);

        put("exit-status.txt", "137");
        put("pretrain.log", "step 1\nerror: out of memory\n");
        let failed = collect(point, &dir);
        assert_eq!(failed.error.as_deref(), Some("run: out of memory (137)"));
        assert_eq!(
            failed.log.train.len(),
            1,
            "a failed run's metrics still count"
        );

        put("build-error.txt", "build: cargo failed");
        assert_eq!(
            collect(point, &dir).error.as_deref(),
            Some("build: cargo failed")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failure_is_told_by_the_binarys_error_line() {
        let log = "loading corpus\nerror: run.toml: unknown field `layer_drop`\n\n";
        assert_eq!(
            failure_line(log, "exit status: 1"),
            "run.toml: unknown field `layer_drop` (exit status: 1)"
        );
        let panic =
            "thread 'main' panicked at src/a.rs:1:2:\nindex out of bounds\nnote: backtrace\n";
        assert_eq!(
            failure_line(panic, "exit status: 101"),
            "thread 'main' panicked at src/a.rs:1:2: index out of bounds (exit status: 101)"
        );
        assert_eq!(failure_line("killed\n", "signal: 9"), "killed (signal: 9)");
        assert_eq!(failure_line("", "signal: 9"), "signal: 9");
    }
}
