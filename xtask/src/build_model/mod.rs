//! `cargo xtask build-model`: generates a one-file binary crate declaring a `bert_config!` model
//! with the dimensions of a Hugging Face `config.json`, and builds it with cargo.
//!
//! The crate lives in `target/dropbert-models/<name>/`, depends on this repository's `dropbert` by
//! path, and builds into the workspace's target directory with a copy of the workspace's
//! `Cargo.lock` and profiles, so it reuses the dependencies the workspace has already compiled.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::ValueEnum;
use serde_json::Value;

use crate::hf_config::HfConfig;

pub mod drops;

pub use drops::{DropArgs, Drops, LayerDrop};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Hugging Face `config.json` whose dimensions the model takes.
    #[arg(long, value_name = "CONFIG_JSON")]
    from_hf_config: PathBuf,
    /// Tokens per sequence the binary is compiled for.
    #[arg(long)]
    seq: NonZeroUsize,
    /// Sequences per batch the binary is compiled for.
    #[arg(long)]
    batch: NonZeroUsize,
    /// Name of the generated crate and binary [default: derived from the dimensions, e.g.
    /// bert-l6-h384-a12-i1536-v30522-s32-b4].
    #[arg(long)]
    name: Option<String>,
    /// Where each encoder block puts its LayerNorms.
    #[arg(long, value_enum, default_value_t = Layout::PostLn)]
    layout: Layout,
    #[command(flatten)]
    drops: DropArgs,
    /// Features of dropbert to turn on (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    features: Vec<Feature>,
    /// Build with the dev profile instead of release.
    #[arg(long)]
    debug: bool,
}

impl Args {
    /// A release build of a post-LN model for the checkpoint whose `config.json` is `config`.
    pub fn for_config(config: PathBuf, seq: NonZeroUsize, batch: NonZeroUsize) -> Self {
        Self {
            from_hf_config: config,
            seq,
            batch,
            name: None,
            layout: Layout::PostLn,
            drops: DropArgs::default(),
            features: Vec::new(),
            debug: false,
        }
    }

    pub fn with_name(self, name: String) -> Self {
        Self {
            name: Some(name),
            ..self
        }
    }

    pub fn with_layout(self, layout: Layout) -> Self {
        Self { layout, ..self }
    }

    pub fn with_drops(self, drops: DropArgs) -> Self {
        Self { drops, ..self }
    }

    pub fn with_features(self, features: Vec<Feature>) -> Self {
        Self { features, ..self }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    PostLn,
    PreLn,
}

impl Layout {
    /// The `dropbert::config::BlockLayout` variant.
    fn variant(self) -> &'static str {
        match self {
            Layout::PostLn => "PostLn",
            Layout::PreLn => "PreLn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Feature {
    /// Run on an NVIDIA GPU through luminal_cuda.
    Cuda,
}

/// Everything the generated crate depends on.
#[derive(Debug, Clone, PartialEq)]
struct ModelSpec {
    name: String,
    config: HfConfig,
    seq: usize,
    batch: usize,
    layout: Layout,
    drops: Drops,
    cuda: bool,
    /// The `config.json` the model came from, named in a doc comment.
    source: PathBuf,
}

/// Generates and builds the model crate; returns the absolute path of the built binary.
pub fn run(args: &Args) -> Result<PathBuf, Box<dyn Error>> {
    let config = HfConfig::load(&args.from_hf_config)?;
    let source = std::path::absolute(&args.from_hf_config)?;
    let spec = ModelSpec::new(args, config, source)?;

    let repo_root = repo_root();
    let target_dir = target_dir(&repo_root)?;
    let crate_dir = repo_root
        .join("target")
        .join("dropbert-models")
        .join(&spec.name);
    write_crate(&spec, &repo_root, &crate_dir)?;
    eprintln!(
        "generated {} from {}",
        crate_dir.display(),
        spec.source.display()
    );

    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "--message-format", "json"]);
    if !args.debug {
        cargo.arg("--release");
    }
    if spec.cuda {
        cargo.args(["--features", "cuda"]);
    }
    build(cargo, &spec.name, &crate_dir)
}

impl ModelSpec {
    fn new(args: &Args, config: HfConfig, source: PathBuf) -> Result<Self, String> {
        let seq = args.seq.get();
        let cuda = args.features.contains(&Feature::Cuda);
        if seq > config.max_position_embeddings {
            return Err(format!(
                "--seq {seq} exceeds max_position_embeddings ({}) of {}",
                config.max_position_embeddings,
                source.display()
            ));
        }
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
        {
            return Err(format!(
                "num_attention_heads ({}) does not divide hidden_size ({}) in {}",
                config.num_attention_heads,
                config.hidden_size,
                source.display()
            ));
        }
        let drops = args
            .drops
            .resolve(seq, config.num_hidden_layers, args.layout)?;
        let name = match &args.name {
            Some(name) => {
                check_name(name)?;
                name.clone()
            }
            None => {
                default_name(&config, seq, args.batch.get(), args.layout, cuda)
                    + &drops.name_suffix()
            }
        };
        Ok(Self {
            name,
            config,
            seq,
            batch: args.batch.get(),
            layout: args.layout,
            drops,
            cuda,
            source,
        })
    }
}

/// `bert-l6-h384-a12-i1536-v30522-s32-b4`, with `-p<max positions>` where that is not 512,
/// `-t<type vocab>` where that is not 2, `-preln` and `-cuda` where they apply (and the drops'
/// suffix after them): distinct binaries get distinct names.
fn default_name(config: &HfConfig, seq: usize, batch: usize, layout: Layout, cuda: bool) -> String {
    let mut name = format!(
        "bert-l{}-h{}-a{}-i{}-v{}-s{seq}-b{batch}",
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        config.vocab_size,
    );
    if config.max_position_embeddings != 512 {
        name += &format!("-p{}", config.max_position_embeddings);
    }
    if config.type_vocab_size != 2 {
        name += &format!("-t{}", config.type_vocab_size);
    }
    if layout == Layout::PreLn {
        name += "-preln";
    }
    if cuda {
        name += "-cuda";
    }
    name
}

/// A name must do as a cargo package name and a file name.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !starts_with_letter || !rest_ok {
        return Err(format!(
            "--name {name:?} must start with an ASCII letter and hold only ASCII letters, digits, \
             `-` and `_`"
        ));
    }
    if name == "dropbert" {
        return Err("--name must not be `dropbert`, the crate the model depends on".into());
    }
    Ok(())
}

/// The generated `src/main.rs`.
fn main_rs(spec: &ModelSpec) -> String {
    let c = &spec.config;
    // A doc comment ends at a line break, so the path must not hold one.
    let source: String = spec
        .source
        .display()
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    format!(
        "// Generated by `cargo xtask build-model`; running it again overwrites this file.
dropbert::bert_config! {{
    /// generated from {source}
    pub Model {{
        vocab: {}, hidden: {}, layers: {}, heads: {}, intermediate: {},
        max_positions: {}, type_vocab: {}, seq: {}, batch: {},
        layout: {}, {},
    }}
}}

fn main() -> std::process::ExitCode {{
    dropbert::cli::main::<Model>()
}}
",
        c.vocab_size,
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.intermediate_size,
        c.max_position_embeddings,
        c.type_vocab_size,
        spec.seq,
        spec.batch,
        spec.layout.variant(),
        spec.drops.macro_fields(),
    )
}

/// The generated `Cargo.toml`.
fn cargo_toml(name: &str, repo_root: &Path, inherited: &Inherited) -> String {
    let mut text = format!(
        "# Generated by `cargo xtask build-model`; running it again overwrites this file.
[package]
name = {}
version = \"0.1.0\"
edition = \"2021\"
publish = false

[dependencies]
dropbert = {{ path = {} }}
",
        toml_string(name),
        toml_string(&repo_root.display().to_string()),
    );
    if let Some(luminal) = &inherited.luminal {
        text.push_str("# `bert_config!` expands to paths through `::luminal`.\n");
        text.push_str(luminal);
        text.push('\n');
    }
    text.push_str(
        "
[features]
cuda = [\"dropbert/cuda\"]

# Not a member of the dropbert workspace that contains this directory.
[workspace]
",
    );
    if !inherited.profiles.is_empty() {
        text.push('\n');
        text.push_str(&inherited.profiles);
    }
    text
}

/// What the generated manifest takes over from the workspace's `Cargo.toml`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Inherited {
    /// The workspace's `luminal = ...` dependency line: `bert_config!` expands to paths through
    /// `::luminal`, so the model crate needs the same luminal as a direct dependency.
    luminal: Option<String>,
    /// The `[profile...]` tables, verbatim and separated by blank lines: a crate outside the
    /// workspace reuses the workspace's compiled dependencies only where it builds them with the
    /// same profile settings.
    profiles: String,
}

impl Inherited {
    fn from_manifest(manifest: &str) -> Self {
        let is_profile = |header: &str| header.starts_with("[profile.") || header == "[profile]";
        let mut luminal = None;
        let mut profile_tables: Vec<Vec<&str>> = Vec::new();
        let mut header = "";
        for line in manifest.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                header = trimmed;
                if is_profile(header) {
                    profile_tables.push(Vec::new());
                }
            }
            if is_profile(header) {
                profile_tables
                    .last_mut()
                    .expect("a profile table was opened")
                    .push(line);
            } else if header == "[dependencies]"
                && trimmed
                    .strip_prefix("luminal")
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                luminal = Some(trimmed.to_owned());
            }
        }
        let mut profiles = String::new();
        for table in &profile_tables {
            let blank_tail = table
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty())
                .count();
            if !profiles.is_empty() {
                profiles.push('\n');
            }
            for line in &table[..table.len() - blank_tail] {
                profiles.push_str(line);
                profiles.push('\n');
            }
        }
        Self { luminal, profiles }
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The repository root: the parent of this crate's directory.
fn repo_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir
        .parent()
        .expect("xtask lives inside the repository")
        .to_owned()
}

/// Where the workspace builds: `$CARGO_TARGET_DIR` where set, as cargo does, else `target/`.
fn target_dir(repo_root: &Path) -> std::io::Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::path::absolute(PathBuf::from(dir)),
        _ => Ok(repo_root.join("target")),
    }
}

fn write_crate(spec: &ModelSpec, repo_root: &Path, crate_dir: &Path) -> Result<(), Box<dyn Error>> {
    let manifest_path = repo_root.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    std::fs::create_dir_all(crate_dir.join("src"))
        .map_err(|e| format!("cannot create {}: {e}", crate_dir.display()))?;
    let inherited = Inherited::from_manifest(&manifest);
    write_if_changed(
        &crate_dir.join("Cargo.toml"),
        &cargo_toml(&spec.name, repo_root, &inherited),
    )?;
    write_if_changed(&crate_dir.join("src").join("main.rs"), &main_rs(spec))?;
    // The workspace's versions of every dependency, so that cargo finds them compiled already.
    let lock = repo_root.join("Cargo.lock");
    if lock.exists() {
        std::fs::copy(&lock, crate_dir.join("Cargo.lock"))
            .map_err(|e| format!("cannot copy {}: {e}", lock.display()))?;
    }
    Ok(())
}

/// Writes `contents` unless the file holds them already, so that cargo sees nothing new to build.
fn write_if_changed(path: &Path, contents: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs `cargo build` with JSON messages on stdout (cargo's progress goes straight to stderr),
/// renders the compiler's diagnostics to stderr, and returns the path of binary `name`; a failed
/// build's error names the compiler's first error, so that a sweep can record why.
fn build(mut cargo: Command, name: &str, crate_dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    let mut child = cargo
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executable = None;
    let mut first_error = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match serde_json::from_str::<Value>(&line) {
            Ok(message) => {
                if let Some(path) = executable_of(&message, name) {
                    executable = Some(path);
                }
                if let Some(rendered) = message["message"]["rendered"].as_str() {
                    eprint!("{rendered}");
                }
                if first_error.is_none() {
                    first_error = compiler_error(&message);
                }
            }
            // Not a cargo message: pass it on, away from stdout.
            Err(_) => eprintln!("{line}"),
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let reason = first_error.map(|e| format!(": {e}")).unwrap_or_default();
        return Err(format!(
            "cargo build of the generated crate {} failed ({status}){reason}",
            crate_dir.display()
        )
        .into());
    }
    executable.ok_or_else(|| format!("cargo built no binary named {name}").into())
}

/// The first line of a cargo `compiler-message` of level error.
fn compiler_error(message: &Value) -> Option<String> {
    if message["reason"] != "compiler-message" || message["message"]["level"] != "error" {
        return None;
    }
    let text = message["message"]["message"].as_str()?;
    text.lines().next().map(str::to_owned)
}

/// The executable of a cargo `compiler-artifact` message for binary `name`.
fn executable_of(message: &Value, name: &str) -> Option<PathBuf> {
    if message["reason"] != "compiler-artifact" || message["target"]["name"] != name {
        return None;
    }
    let is_bin = message["target"]["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
    if !is_bin {
        return None;
    }
    message["executable"].as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mini() -> HfConfig {
        HfConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
        }
    }

    fn args(extra: &[&str]) -> Args {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let base = ["build-model", "--from-hf-config", "config.json"];
        Cli::try_parse_from(base.iter().chain(extra)).unwrap().args
    }

    fn spec(extra: &[&str]) -> Result<ModelSpec, String> {
        ModelSpec::new(
            &args(extra),
            mini(),
            PathBuf::from("/models/minilm/config.json"),
        )
    }

    #[test]
    fn generates_the_model_source() {
        let spec = spec(&["--seq", "32", "--batch", "4"]).unwrap();
        assert_eq!(
            main_rs(&spec),
            "// Generated by `cargo xtask build-model`; running it again overwrites this file.
dropbert::bert_config! {
    /// generated from /models/minilm/config.json
    pub Model {
        vocab: 30522, hidden: 384, layers: 6, heads: 12, intermediate: 1536,
        max_positions: 512, type_vocab: 2, seq: 32, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() -> std::process::ExitCode {
    dropbert::cli::main::<Model>()
}
"
        );
    }

    #[test]
    fn the_layout_option_picks_the_block_layout() {
        let spec = spec(&["--seq", "32", "--batch", "4", "--layout", "pre-ln"]).unwrap();
        assert_eq!(spec.layout, Layout::PreLn);
        assert!(
            main_rs(&spec).contains("        layout: PreLn, token_drop: off, layer_drop: off,\n")
        );
    }

    #[test]
    fn the_default_name_comes_from_the_dimensions() {
        let spec = spec(&["--seq", "32", "--batch", "4"]).unwrap();
        assert_eq!(spec.name, "bert-l6-h384-a12-i1536-v30522-s32-b4");
        assert!(!spec.cuda);

        let config = HfConfig {
            max_position_embeddings: 128,
            type_vocab_size: 1,
            ..mini()
        };
        assert_eq!(
            default_name(&config, 64, 8, Layout::PreLn, true),
            "bert-l6-h384-a12-i1536-v30522-s64-b8-p128-t1-preln-cuda"
        );
    }

    #[test]
    fn a_given_name_is_checked() {
        let spec = spec(&["--seq", "32", "--batch", "4", "--name", "my_model-2"]).unwrap();
        assert_eq!(spec.name, "my_model-2");
        for bad in ["", "2fast", "a/b", "../x", "naïve", "dropbert", "a b"] {
            let error = check_name(bad).unwrap_err();
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn the_cuda_feature_is_parsed() {
        let spec = spec(&["--seq", "32", "--batch", "4", "--features", "cuda"]).unwrap();
        assert!(spec.cuda);
        assert!(spec.name.ends_with("-cuda"));
    }

    #[test]
    fn drop_flags_reach_the_model_source_and_the_name() {
        let spec = spec(&[
            "--seq",
            "128",
            "--batch",
            "16",
            "--layout",
            "pre-ln",
            "--token-drop-layer",
            "1",
            "--kept-ratio",
            "0.5",
            "--layer-drop",
        ])
        .unwrap();
        assert_eq!(
            spec.name,
            "bert-l6-h384-a12-i1536-v30522-s128-b16-preln-td1k64-ld0p5"
        );
        assert!(main_rs(&spec).contains(
            "        layout: PreLn, token_drop: { layer: 1, kept: 64 }, \
             layer_drop: { theta_bar: 0.5, gamma: 0.001 },\n"
        ));
        let error = ModelSpec::new(
            &args(&["--seq", "32", "--batch", "4", "--layer-drop"]),
            mini(),
            "c.json".into(),
        )
        .unwrap_err();
        assert!(
            error.starts_with("--layer-drop needs --layout pre-ln"),
            "{error}"
        );
        let error = spec_error(&["--seq", "32", "--batch", "4", "--token-drop-layer", "5"]);
        assert_eq!(
            error,
            "--token-drop-layer needs --kept-tokens or --kept-ratio"
        );
    }

    fn spec_error(extra: &[&str]) -> String {
        spec(extra).unwrap_err()
    }

    #[test]
    fn shapes_the_model_cannot_have_are_refused_early() {
        let error = spec(&["--seq", "513", "--batch", "4"]).unwrap_err();
        assert_eq!(
            error,
            "--seq 513 exceeds max_position_embeddings (512) of /models/minilm/config.json"
        );
        let odd = HfConfig {
            num_attention_heads: 5,
            ..mini()
        };
        let error = ModelSpec::new(
            &args(&["--seq", "32", "--batch", "4"]),
            odd,
            "c.json".into(),
        )
        .unwrap_err();
        assert_eq!(
            error,
            "num_attention_heads (5) does not divide hidden_size (384) in c.json"
        );
    }

    #[test]
    fn the_command_line_rejects_zero_and_unknown_values() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let base = ["x", "--from-hf-config", "c.json"];
        for extra in [
            &["--seq", "0", "--batch", "4"][..],
            &["--seq", "32", "--batch", "4", "--layout", "sandwich"],
            &["--seq", "32", "--batch", "4", "--features", "metal"],
            &["--seq", "32"],
        ] {
            assert!(Cli::try_parse_from(base.iter().chain(extra)).is_err());
        }
    }

    #[test]
    fn generates_the_manifest() {
        let inherited = Inherited {
            luminal: Some("luminal = \"=0.2.0\"".into()),
            profiles: "[profile.release]\ndebug = 1\n".into(),
        };
        let text = cargo_toml(
            "bert-l6-h384-a12-i1536-v30522-s32-b4",
            Path::new("/work/my \"repo\""),
            &inherited,
        );
        assert_eq!(
            text,
            r#"# Generated by `cargo xtask build-model`; running it again overwrites this file.
[package]
name = "bert-l6-h384-a12-i1536-v30522-s32-b4"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
dropbert = { path = "/work/my \"repo\"" }
# `bert_config!` expands to paths through `::luminal`.
luminal = "=0.2.0"

[features]
cuda = ["dropbert/cuda"]

# Not a member of the dropbert workspace that contains this directory.
[workspace]

[profile.release]
debug = 1
"#
        );
        let bare = cargo_toml("m", Path::new("/r"), &Inherited::default());
        assert!(bare.ends_with("[workspace]\n"), "{bare}");
        assert!(!bare.contains("luminal"), "{bare}");
    }

    #[test]
    fn takes_luminal_and_the_profiles_from_the_workspace_manifest() {
        let manifest = r#"[workspace]
members = [".", "xtask"]

[package]
name = "dropbert"

[dependencies]
luminal = "=0.2.0"
luminal_cuda = { version = "=0.2.0", optional = true }

[dev-dependencies]
luminal = "9"

[profile.dev]
opt-level = 1

[profile.dev.package."*"]
opt-level = 3


[profile.release]
debug = 1
[[bin]]
name = "bert-tiny"
"#;
        assert_eq!(
            Inherited::from_manifest(manifest),
            Inherited {
                luminal: Some("luminal = \"=0.2.0\"".into()),
                profiles: "[profile.dev]\nopt-level = 1\n\n[profile.dev.package.\"*\"]\n\
                           opt-level = 3\n\n[profile.release]\ndebug = 1\n"
                    .into(),
            }
        );
        assert_eq!(
            Inherited::from_manifest("[package]\nname = \"x\"\n"),
            Inherited::default()
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r"C:\models"), r#""C:\\models""#);
        assert_eq!(toml_string("a\"b\nc\u{1}"), r#""a\"b\nc\u0001""#);
    }

    #[test]
    fn finds_the_binary_in_cargo_messages() {
        let message: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"m"},
                "executable":"/t/release/m"}"#,
        )
        .unwrap();
        assert_eq!(
            executable_of(&message, "m"),
            Some(PathBuf::from("/t/release/m"))
        );
        assert_eq!(executable_of(&message, "other"), None);
        let library: Value = serde_json::from_str(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"m"},
                "executable":null}"#,
        )
        .unwrap();
        assert_eq!(executable_of(&library, "m"), None);
        let finished: Value =
            serde_json::from_str(r#"{"reason":"build-finished","success":true}"#).unwrap();
        assert_eq!(executable_of(&finished, "m"), None);
    }

    #[test]
    fn takes_the_first_compiler_error() {
        let message: Value = serde_json::from_str(
            r#"{"reason":"compiler-message","message":{"level":"error",
                "message":"evaluation panicked: kept tokens must not exceed the sequence length",
                "rendered":"error[E0080]: ..."}}"#,
        )
        .unwrap();
        assert_eq!(
            compiler_error(&message).as_deref(),
            Some("evaluation panicked: kept tokens must not exceed the sequence length")
        );
        let warning: Value = serde_json::from_str(
            r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused"}}"#,
        )
        .unwrap();
        assert_eq!(compiler_error(&warning), None);
    }

    #[test]
    fn the_repository_root_holds_the_workspace() {
        let root = repo_root();
        assert!(root.is_absolute());
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").join("Cargo.toml").is_file());
    }
}
