//! What a model binary's `info` says about its compiled configuration.

use std::path::Path;
use std::process::Command;

use serde::Serialize;
use serde_json::Value;

/// `<binary> info --json`; a key the binary does not print stays `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Info {
    pub configuration: Option<String>,
    pub parameters: Option<u64>,
    /// Matmul FLOPs of one training step with token dropping applied and every layer run.
    pub flops_per_step: Option<f64>,
    /// The same dimensions without any dropping.
    pub flops_per_step_full: Option<f64>,
    pub activation_bytes: Option<u64>,
}

impl Info {
    /// `<binary> info --json` as the binary printed it, kept with the point so that a staged
    /// sweep reads it back; a binary without `--json` gets its plain `info` lines as JSON.
    pub fn json_of(binary: &Path) -> Option<String> {
        let output = |args: &[&str]| {
            Command::new(binary)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        if let Some(json) = output(&["info", "--json"]) {
            if serde_json::from_str::<Value>(&json).is_ok() {
                return Some(json);
            }
        }
        let info = Self::from_text(&output(&["info"])?);
        Some(serde_json::to_string(&info).expect("Info serializes"))
    }

    pub fn from_json(value: &Value) -> Self {
        Self {
            configuration: value["configuration"].as_str().map(str::to_owned),
            parameters: value["parameters"].as_u64(),
            flops_per_step: value["flops_per_step"].as_f64(),
            flops_per_step_full: value["flops_per_step_full"].as_f64(),
            activation_bytes: value["activation_bytes"].as_u64(),
        }
    }

    /// The `configuration: X` and `parameters: N` lines of plain `info`.
    pub fn from_text(text: &str) -> Self {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        Self {
            configuration: value("configuration").map(str::to_owned),
            parameters: value("parameters").and_then(|n| n.parse().ok()),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_tolerates_missing_keys() {
        let value = serde_json::json!({
            "configuration": "Model", "parameters": 1932928, "flops_per_step": 1.5e11,
            "extra": [1, 2]
        });
        assert_eq!(
            Info::from_json(&value),
            Info {
                configuration: Some("Model".into()),
                parameters: Some(1932928),
                flops_per_step: Some(1.5e11),
                flops_per_step_full: None,
                activation_bytes: None,
            }
        );
    }

    #[test]
    fn reads_plain_info_lines() {
        let text = "configuration: Model\nlayers 4 hidden 128\nparameters: 1932928\n";
        let info = Info::from_text(text);
        assert_eq!(info.configuration.as_deref(), Some("Model"));
        assert_eq!(info.parameters, Some(1932928));
        assert_eq!(info.flops_per_step, None);
    }
}
