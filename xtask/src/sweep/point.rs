//! One point of a sweep (a preset with a method) and the files that describe it to build-model
//! and to its binary: `config.json` and `run.toml`.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use serde_json::json;

use super::grid::{Grid, Preset, RunSettings};
use super::method::Method;
use crate::build_model::{self, DropArgs, Layout};

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `<preset>-<method label>`: the binary's and the point folder's name.
    pub name: String,
    pub preset: Preset,
    pub method: Method,
}

/// Every preset with every method, preset by preset.
pub fn points(grid: &Grid) -> Vec<Point> {
    grid.presets
        .iter()
        .flat_map(|preset| {
            grid.methods.iter().map(move |method| Point {
                name: format!("{}-{}", preset.name, method.label),
                preset: preset.clone(),
                method: method.clone(),
            })
        })
        .collect()
}

impl Point {
    /// build-model's drop flags for this point.
    pub fn drop_args(&self) -> DropArgs {
        let token = self.method.token_drop.as_ref();
        let layer = self.method.layer_drop.as_ref();
        DropArgs {
            token_drop_layer: token.map(|t| t.layer),
            kept_tokens: None,
            kept_ratio: token.map(|t| t.kept_ratio),
            layer_drop: layer.is_some(),
            theta_bar: layer.map(|l| l.theta_bar),
            gamma: layer.map(|l| l.gamma),
        }
    }

    /// build-model's arguments: the point's `config.json`, its drops, named after the point.
    pub fn build_args(
        &self,
        config_json: PathBuf,
        cuda: bool,
    ) -> Result<build_model::Args, String> {
        let positive = |key: &str, n: usize| {
            NonZeroUsize::new(n).ok_or_else(|| format!("preset {}: {key} is 0", self.preset.name))
        };
        let args = build_model::Args::for_config(
            config_json,
            positive("seq", self.preset.seq)?,
            positive("batch", self.preset.batch)?,
        )
        .with_name(self.name.clone())
        .with_layout(self.preset.layout)
        .with_drops(self.drop_args());
        Ok(if cuda {
            args.with_features(vec![build_model::Feature::Cuda])
        } else {
            args
        })
    }

    /// A Hugging Face BERT `config.json` with the preset's dimensions.
    pub fn config_json(&self) -> String {
        let p = &self.preset;
        let mut config = json!({
            "architectures": ["BertForMaskedLM"],
            "model_type": "bert",
            "vocab_size": p.vocab,
            "hidden_size": p.hidden,
            "num_hidden_layers": p.layers,
            "num_attention_heads": p.heads,
            "intermediate_size": p.intermediate,
            "max_position_embeddings": p.max_positions,
            "type_vocab_size": p.type_vocab,
        });
        if p.layout == Layout::PreLn {
            config["dropbert_block_layout"] = "pre-ln".into();
        }
        serde_json::to_string_pretty(&config).expect("a JSON object serializes") + "\n"
    }

    /// The run configuration: the grid's shared settings, and only the drop sections that apply
    /// to this point's method (a binary compiled without a drop refuses its section).
    pub fn run_toml(&self, run: &RunSettings, steps: Option<u64>) -> String {
        let mut table = toml::Table::new();
        let mut set = |key: &str, value: Option<toml::Value>| {
            if let Some(value) = value {
                table.insert(key.into(), value);
            }
        };
        let int = |n: u64| toml::Value::Integer(n as i64);
        let path = |p: &PathBuf| toml::Value::String(p.display().to_string());
        set("steps", steps.or(run.steps).map(int));
        set("seed", run.seed.map(int));
        set("learning_rate", run.learning_rate.map(toml::Value::Float));
        set("warmup_steps", run.warmup_steps.map(int));
        set("eval_every", run.eval_every.map(int));
        set("eval_batches", run.eval_batches.map(int));
        set("corpus", run.corpus.as_ref().map(path));
        set("vocab", run.vocab.as_ref().map(path));
        if let Some(token) = &self.method.token_drop {
            let mut section = toml::Table::new();
            if let Some(selection) = &token.selection {
                section.insert("selection".into(), selection.clone().into());
            }
            for (key, value) in [
                ("random_fraction", token.random_fraction),
                ("beta", token.beta),
                ("initial_importance", token.initial_importance),
            ] {
                if let Some(value) = value {
                    section.insert(key.into(), value.into());
                }
            }
            if !section.is_empty() {
                table.insert("token_drop".into(), section.into());
            }
        }
        if let Some(layer) = &self.method.layer_drop {
            let mut section = toml::Table::new();
            section.insert("theta_bar".into(), layer.theta_bar.into());
            section.insert("gamma".into(), layer.gamma.into());
            table.insert("layer_drop".into(), section.into());
        }
        toml::to_string(&table).expect("a TOML table serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::grid::DEFAULT_GRID;

    fn default_points() -> (Grid, Vec<Point>) {
        let grid = Grid::parse(DEFAULT_GRID, std::path::Path::new("/repo/sweep")).unwrap();
        let points = points(&grid);
        (grid, points)
    }

    #[test]
    fn config_json_has_the_keys_build_model_reads() {
        let (_, points) = default_points();
        let text = points[0].config_json();
        let config = crate::hf_config::HfConfig::parse(&text, "c.json".as_ref()).unwrap();
        assert_eq!(
            (
                config.vocab_size,
                config.hidden_size,
                config.num_hidden_layers
            ),
            (8192, 128, 4)
        );
        assert_eq!(
            (config.num_attention_heads, config.intermediate_size),
            (2, 512)
        );
        assert_eq!(
            (config.max_position_embeddings, config.type_vocab_size),
            (512, 2)
        );
        assert!(
            text.contains("\"dropbert_block_layout\": \"pre-ln\""),
            "{text}"
        );
    }

    #[test]
    fn run_toml_holds_the_shared_settings_and_only_the_methods_sections() {
        let (grid, points) = default_points();
        let baseline = points[0].run_toml(&grid.run, None);
        assert_eq!(
            baseline,
            "eval_batches = 4\neval_every = 10\nlearning_rate = 0.001\nseed = 0\nsteps = 60\n\
             warmup_steps = 6\n"
        );
        let token_drop = points[1].run_toml(&grid.run, Some(5));
        assert!(token_drop.contains("steps = 5\n"), "{token_drop}");
        assert!(!token_drop.contains('['), "{token_drop}");
        let both = points[3].run_toml(&grid.run, None);
        assert!(
            both.ends_with("\n[layer_drop]\ngamma = 0.05\ntheta_bar = 0.5\n"),
            "{both}"
        );
        let mut selected = points[1].clone();
        let token = selected.method.token_drop.as_mut().unwrap();
        token.selection = Some("mixed".into());
        token.random_fraction = Some(0.2);
        let text = selected.run_toml(&grid.run, None);
        assert!(
            text.ends_with("\n[token_drop]\nrandom_fraction = 0.2\nselection = \"mixed\"\n"),
            "{text}"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["steps"].as_integer(), Some(60));
    }

    #[test]
    fn build_arguments_carry_the_points_drops() {
        let (_, points) = default_points();
        let both = points[3].drop_args();
        assert_eq!(both.token_drop_layer, Some(1));
        assert_eq!(both.kept_ratio, Some(0.5));
        assert!(both.layer_drop);
        assert_eq!((both.theta_bar, both.gamma), (Some(0.5), Some(0.05)));
        let baseline = points[0].drop_args();
        assert!(baseline.token_drop_layer.is_none() && !baseline.layer_drop);
        assert!(points[0].build_args("c.json".into(), false).is_ok());
    }
}
