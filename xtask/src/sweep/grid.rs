//! The grid file of `cargo xtask sweep`: shared run settings, model presets and drop methods
//! (documented at the top of `xtask/grids/default.toml`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::method::{Method, MethodEntry};
use crate::build_model::Layout;

/// The grid a sweep runs when given none.
pub const DEFAULT_GRID: &str = include_str!("../../grids/default.toml");

/// "auto" targets this multiple of the baseline's final validation loss.
pub const AUTO_TARGET_FACTOR: f64 = 1.02;

#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub run: RunSettings,
    pub presets: Vec<Preset>,
    pub methods: Vec<Method>,
}

/// What every point's run shares; `None` leaves the model binary's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSettings {
    pub steps: Option<u64>,
    pub seed: Option<u64>,
    pub learning_rate: Option<f64>,
    pub warmup_steps: Option<u64>,
    pub eval_every: Option<u64>,
    pub eval_batches: Option<u64>,
    /// Absolute, resolved against the grid file's folder.
    pub corpus: Option<PathBuf>,
    pub vocab: Option<PathBuf>,
    pub target_loss: TargetLoss,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetLoss {
    /// The preset's baseline final validation loss times [`AUTO_TARGET_FACTOR`].
    #[default]
    Auto,
    Fixed(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    #[serde(default)]
    pub name: String,
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    #[serde(default = "default_max_positions")]
    pub max_positions: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab: usize,
    pub seq: usize,
    pub batch: usize,
    #[serde(default = "default_layout", with = "layout_name")]
    pub layout: Layout,
}

fn default_max_positions() -> usize {
    512
}

fn default_type_vocab() -> usize {
    2
}

fn default_layout() -> Layout {
    Layout::PreLn
}

/// The grid file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    #[serde(default)]
    run: RunFile,
    #[serde(default)]
    preset: Vec<Preset>,
    #[serde(default)]
    method: Vec<MethodEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    steps: Option<u64>,
    seed: Option<u64>,
    learning_rate: Option<f64>,
    warmup_steps: Option<u64>,
    eval_every: Option<u64>,
    eval_batches: Option<u64>,
    corpus: Option<PathBuf>,
    vocab: Option<PathBuf>,
    target_loss: Option<toml::Value>,
}

impl Grid {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let folder = std::path::absolute(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        Self::parse(&text, &folder).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a grid; relative paths in it are taken relative to `folder`.
    pub fn parse(text: &str, folder: &Path) -> Result<Self, String> {
        let file: GridFile = toml::from_str(text).map_err(|e| describe(&e, text))?;
        let run = file.run.resolve(folder)?;
        if file.preset.is_empty() {
            return Err("the grid has no [[preset]]".into());
        }
        if file.method.is_empty() {
            return Err("the grid has no [[method]]".into());
        }
        let mut presets = file.preset;
        for (index, preset) in presets.iter_mut().enumerate() {
            preset.check(index)?;
        }
        let methods = file
            .method
            .into_iter()
            .enumerate()
            .map(|(index, entry)| entry.resolve(index))
            .collect::<Result<Vec<_>, _>>()?;
        let grid = Self {
            run,
            presets,
            methods,
        };
        grid.check_points()?;
        Ok(grid)
    }

    /// Every preset with every method must compile, and point names must be distinct.
    fn check_points(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for point in super::point::points(self) {
            point
                .drop_args()
                .resolve(point.preset.seq, point.preset.layers, point.preset.layout)
                .map_err(|e| format!("point {}: {e}", point.name))?;
            if !names.insert(point.name.clone()) {
                return Err(format!(
                    "two points are named {}: give one of their methods a distinct `name`",
                    point.name
                ));
            }
        }
        Ok(())
    }
}

impl RunFile {
    fn resolve(self, folder: &Path) -> Result<RunSettings, String> {
        let target_loss = match self.target_loss {
            None => TargetLoss::Auto,
            Some(toml::Value::String(s)) if s == "auto" => TargetLoss::Auto,
            Some(toml::Value::Float(x)) if x.is_finite() && x > 0.0 => TargetLoss::Fixed(x),
            Some(toml::Value::Integer(n)) if n > 0 => TargetLoss::Fixed(n as f64),
            Some(other) => {
                return Err(format!(
                    "[run] target_loss must be \"auto\" or a positive number, not {other}"
                ))
            }
        };
        if let Some(rate) = self.learning_rate {
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(format!(
                    "[run] learning_rate must be a positive number, not {rate}"
                ));
            }
        }
        if self.steps == Some(0) {
            return Err("[run] steps must be at least 1".into());
        }
        Ok(RunSettings {
            steps: self.steps,
            seed: self.seed,
            learning_rate: self.learning_rate,
            warmup_steps: self.warmup_steps,
            eval_every: self.eval_every,
            eval_batches: self.eval_batches,
            corpus: self.corpus.map(|p| folder.join(p)),
            vocab: self.vocab.map(|p| folder.join(p)),
            target_loss,
        })
    }
}

impl Preset {
    fn check(&mut self, index: usize) -> Result<(), String> {
        let which = format!("preset {}", index + 1);
        for (key, value) in [
            ("vocab", self.vocab),
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("heads", self.heads),
            ("intermediate", self.intermediate),
            ("max_positions", self.max_positions),
            ("type_vocab", self.type_vocab),
            ("seq", self.seq),
            ("batch", self.batch),
        ] {
            if value == 0 {
                return Err(format!("{which}: {key} must be at least 1"));
            }
        }
        if self.name.is_empty() {
            self.name = format!(
                "l{}-h{}-a{}-s{}-b{}",
                self.layers, self.hidden, self.heads, self.seq, self.batch
            );
        } else {
            check_name(&self.name).map_err(|e| format!("{which}: {e}"))?;
        }
        Ok(())
    }
}

/// Point names become binary and folder names.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!(
            "name {name:?} must start with an ASCII letter and hold only ASCII letters, digits, \
             `-` and `_`"
        ));
    }
    Ok(())
}

/// A TOML error in one line: where, the line itself, and what is wrong.
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line} (`{source}`): {message}")
        }
        None => message,
    }
}

/// `layout = "post-ln" | "pre-ln"`.
mod layout_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::build_model::Layout;

    pub fn serialize<S: Serializer>(layout: &Layout, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match layout {
            Layout::PostLn => "post-ln",
            Layout::PreLn => "pre-ln",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Layout, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "post-ln" => Ok(Layout::PostLn),
            "pre-ln" => Ok(Layout::PreLn),
            other => Err(serde::de::Error::custom(format!(
                "layout must be \"post-ln\" or \"pre-ln\", not {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::method::MethodKind;

    fn parse(text: &str) -> Result<Grid, String> {
        Grid::parse(text, Path::new("/grids"))
    }

    const PRESET: &str = r#"
[[preset]]
vocab = 8192
hidden = 128
layers = 4
heads = 2
intermediate = 512
seq = 128
batch = 16
"#;

    #[test]
    fn the_default_grid_parses() {
        let grid = parse(DEFAULT_GRID).unwrap();
        assert_eq!(grid.presets.len(), 1);
        assert_eq!(grid.presets[0].layout, Layout::PreLn);
        let kinds: Vec<MethodKind> = grid.methods.iter().map(|m| m.kind).collect();
        use MethodKind::*;
        assert_eq!(kinds, [Baseline, TokenDrop, LayerDrop, Both]);
        assert_eq!(grid.run.target_loss, TargetLoss::Auto);
        assert_eq!(grid.run.corpus, None);
        let names: Vec<String> = crate::sweep::point::points(&grid)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [
                "l4-h128-baseline",
                "l4-h128-td1r0p5",
                "l4-h128-ld0p5g0p05",
                "l4-h128-td1r0p5-ld0p5g0p05"
            ]
        );
    }

    #[test]
    fn defaults_fill_what_a_grid_leaves_out() {
        let grid = parse(&format!(
            "[run]\ncorpus = \"texts/a.txt\"\ntarget_loss = 7\n{PRESET}\n[[method]]\nkind = \"baseline\"\n"
        ))
        .unwrap();
        let preset = &grid.presets[0];
        assert_eq!(preset.name, "l4-h128-a2-s128-b16");
        assert_eq!((preset.max_positions, preset.type_vocab), (512, 2));
        assert_eq!(grid.run.corpus, Some(PathBuf::from("/grids/texts/a.txt")));
        assert_eq!(grid.run.target_loss, TargetLoss::Fixed(7.0));
        assert_eq!(grid.run.steps, None);
        let method = &grid.methods[0];
        assert_eq!(
            (method.token_drop.as_ref(), method.layer_drop),
            (None, None)
        );
    }

    #[test]
    fn bad_grids_are_refused_with_a_reason() {
        let base = |methods: &str| format!("{PRESET}\n{methods}");
        let cases = [
            (base(""), "the grid has no [[method]]"),
            (
                "[[method]]\nkind = \"baseline\"\n".to_owned(),
                "the grid has no [[preset]]",
            ),
            (
                base("[[method]]\nkind = \"token_drop\"\nlayer = 1\n"),
                "method 1 (token_drop) needs `kept_ratio`",
            ),
            (
                base("[[method]]\nkind = \"baseline\"\ngamma = 0.1\n"),
                "method 1 (baseline) does not take `gamma`",
            ),
            (
                base("[[method]]\nkind = \"layer_drop\"\ntheta_bar = 1.5\n"),
                "method 1 (layer_drop): theta_bar 1.5 must lie in (0, 1]",
            ),
            (
                base("[[method]]\nkind = \"token_drop\"\nlayer = 3\nkept_ratio = 0.5\n"),
                "point l4-h128-a2-s128-b16-td3r0p5: --token-drop-layer 3 must lie before the \
                 last layer: at most 2 for 4 layers",
            ),
            (
                base(
                    "[[method]]\nkind = \"token_drop\"\nlayer = 1\nkept_ratio = 0.5\n\
                     selection = \"best\"\n",
                ),
                "method 1 (token_drop): selection must be \"importance\", \"random\" or \
                 \"mixed\", not \"best\"",
            ),
            (
                base("[[method]]\nkind = \"baseline\"\n[[method]]\nkind = \"baseline\"\n"),
                "two points are named l4-h128-a2-s128-b16-baseline: give one of their methods \
                 a distinct `name`",
            ),
            (
                format!(
                    "[run]\ntarget_loss = \"low\"\n{}",
                    base("[[method]]\nkind = \"baseline\"")
                ),
                "[run] target_loss must be \"auto\" or a positive number, not \"low\"",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse(&text).unwrap_err(), message, "{text}");
        }
        let post_ln =
            PRESET.to_owned() + "layout = \"post-ln\"\n[[method]]\nkind = \"layer_drop\"\n";
        assert_eq!(
            parse(&post_ln).unwrap_err(),
            "point l4-h128-a2-s128-b16-ld0p5g0p001: --layer-drop needs --layout pre-ln \
             (progressive layer dropping skips pre-LN blocks)"
        );
    }

    #[test]
    fn toml_errors_are_one_line_and_name_the_key() {
        for (text, needle) in [
            (base_with("[[method]]\nkind = \"magic\"\n"), "magic"),
            (
                base_with("[[method]]\nkind = \"baseline\"\nspeed = 2\n"),
                "speed",
            ),
            (PRESET.replace("heads = 2", "heads = \"two\""), "heads"),
            (
                base_with("[[method]]\nkind = \"baseline\"\n")
                    .replace("batch = 16", "batch = 16\nlayout = \"sandwich\""),
                "sandwich",
            ),
            ("[run]\nstep = 5\n".to_owned(), "step"),
        ] {
            let error = parse(&text).unwrap_err();
            assert!(error.starts_with("line "), "{error}");
            assert!(error.contains(needle), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    fn base_with(methods: &str) -> String {
        format!("{PRESET}\n{methods}")
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = Grid::load(Path::new("/nonexistent/grid.toml")).unwrap_err();
        assert!(
            error.starts_with("cannot read /nonexistent/grid.toml: "),
            "{error}"
        );
    }
}
