//! A sweep's outputs: `results.csv`, `results.json`, `plots/*.svg` and `report.md`.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::grid::RunSettings;
use super::results::PointResult;
use super::svg_plot::{bar_chart, line_chart, Series};
use super::table;

/// What the report says about where and how the sweep ran.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub command: String,
    pub uname: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub backend: String,
    pub started: String,
    pub sweep_seconds: f64,
    /// A staged sweep: what `run-points.sh` wrote of the machine the points ran on.
    pub ran_on: Option<String>,
}

impl Facts {
    pub fn gather(command: String, backend: &str, started: String, sweep_seconds: f64) -> Self {
        let uname = Command::new("uname")
            .arg("-a")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        Self {
            command,
            uname,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            backend: backend.to_owned(),
            started,
            sweep_seconds,
            ran_on: None,
        }
    }
}

#[derive(Serialize)]
struct ResultsFile<'a> {
    facts: &'a Facts,
    run: &'a RunSettings,
    results: &'a [PointResult],
}

pub fn write_all(
    out: &Path,
    facts: &Facts,
    run: &RunSettings,
    results: &[PointResult],
) -> Result<(), String> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots)
        .map_err(|e| format!("cannot create {}: {e}", plots.display()))?;
    write(&out.join("results.csv"), &table::csv(results))?;
    let json = serde_json::to_string_pretty(&ResultsFile {
        facts,
        run,
        results,
    })
    .expect("results serialize");
    write(&out.join("results.json"), &(json + "\n"))?;
    for (file, svg) in plots_of(results) {
        write(&plots.join(file), &svg)?;
    }
    write(&out.join("report.md"), &markdown(facts, results))
}

/// The three charts, by file name.
pub fn plots_of(results: &[PointResult]) -> Vec<(&'static str, String)> {
    let curves = |x: fn(&super::metrics::CurvePoint) -> Option<f64>| -> Vec<Series> {
        results
            .iter()
            .filter(|r| !r.validation.is_empty())
            .map(|r| Series {
                name: r.point.clone(),
                points: r
                    .validation
                    .iter()
                    .filter_map(|p| Some((x(p)?, p.loss)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let groups: Vec<(String, Vec<Option<f64>>)> = results
        .iter()
        .map(|r| {
            let label = match r.status {
                "ok" => r.point.clone(),
                status => format!("{} ({status})", r.point),
            };
            (label, vec![r.speedup, r.flop_ratio])
        })
        .collect();
    vec![
        (
            "loss_vs_time.svg",
            line_chart(
                "Validation loss against training time",
                "seconds in training steps",
                "validation MLM loss",
                &curves(|p| Some(p.seconds)),
            ),
        ),
        (
            "loss_vs_flops.svg",
            line_chart(
                "Validation loss against training FLOPs",
                "matmul FLOPs",
                "validation MLM loss",
                &curves(|p| p.flops),
            ),
        ),
        (
            "speedup.svg",
            bar_chart(
                "Speedup per step against the baseline",
                "x baseline",
                &["measured speedup (step time)", "theoretical (FLOP ratio)"],
                &groups,
                1.0,
            ),
        ),
    ]
}

fn markdown(facts: &Facts, results: &[PointResult]) -> String {
    let mut text = String::from("# Sweep report\n\n");
    text += &format!("Command: `{}`\n\n", facts.command);
    text += &format!(
        "Started {} (UTC), took {:.0} s; backend {}.\n\n",
        facts.started, facts.sweep_seconds, facts.backend
    );
    if let Some(machine) = &facts.ran_on {
        text += &format!(
            "The points ran on: `{}`; this report was written on the machine below.\n\n",
            machine.trim().replace('\n', "; ")
        );
    }
    text += &format!(
        "Machine: `{}`; {} CPUs{}.\n\n",
        facts.uname,
        facts.cpus,
        facts
            .cpu_model
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    text += "## Results\n\n";
    text += &table::markdown(results);
    text += "\nFLOP ratio: the baseline's matmul FLOPs per step over the point's; speedup: the \
             baseline's mean step time over the point's (both means leave out the first step); \
             tokens/s: the median step's; train s: seconds in training steps; \
             target: the validation loss timed (s and GFLOP to target count the steps up to the \
             first validation at or below it).\n\n";
    text += "## Plots\n\n";
    for (file, title) in [
        ("loss_vs_time.svg", "validation loss against training time"),
        (
            "loss_vs_flops.svg",
            "validation loss against training FLOPs",
        ),
        ("speedup.svg", "measured speedup and FLOP ratio"),
    ] {
        text += &format!("![{title}](plots/{file})\n\n");
    }
    text +=
        "Raw numbers: `results.csv`, `results.json` (with each point's validation curve); each \
             point's files (config.json, run.toml, pretrain.log, run/metrics.jsonl) are in \
             `points/<point>/`.\n";
    text
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tag closed in order, every attribute quoted: enough to know a browser will parse it.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag ends") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "{tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap().to_owned());
            }
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "unclosed {open:?}");
    }

    #[test]
    fn writes_csv_json_plots_and_report() {
        let out = std::env::temp_dir().join(format!("dropbert-sweep-test-{}", std::process::id()));
        let results = crate::sweep::results::sample();
        let facts = Facts::gather(
            "cargo xtask sweep".into(),
            "cpu",
            "2025-01-01T00-00-00".into(),
            42.0,
        );
        assert!(facts.cpus >= 1);
        write_all(&out, &facts, &RunSettings::default(), &results).unwrap();

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(json["results"].as_array().unwrap().len(), 4);
        assert_eq!(json["results"][1]["speedup"], 1.6);
        assert_eq!(json["results"][3]["speedup"], serde_json::Value::Null);
        assert_eq!(json["results"][0]["validation"][1]["seconds"], 4.0);
        assert_eq!(json["facts"]["sweep_seconds"], 42.0);
        assert_eq!(
            std::fs::read_to_string(out.join("results.csv")).unwrap(),
            table::csv(&results)
        );

        // Three points have curves; the failed one has none.
        for file in ["loss_vs_time.svg", "loss_vs_flops.svg"] {
            let svg = std::fs::read_to_string(out.join("plots").join(file)).unwrap();
            assert_well_formed(&svg);
            assert_eq!(svg.matches("<polyline").count(), 3, "{file}");
            assert!(svg.contains(">l4-h128-td1r0p5<"), "{file}: legend");
        }
        let bars = std::fs::read_to_string(out.join("plots").join("speedup.svg")).unwrap();
        assert_well_formed(&bars);
        // Speedup and FLOP ratio for the three that ran.
        assert_eq!(
            bars.matches("<rect x=").count(),
            6 + 2,
            "bars and legend swatches"
        );
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("Command: `cargo xtask sweep`"));
        assert!(report.contains("](plots/speedup.svg)"));
        assert!(report.contains(&table::markdown(&results)));
        std::fs::remove_dir_all(&out).unwrap();
    }
}
