//! The drop flags of `cargo xtask build-model`: token dropping and progressive layer dropping,
//! checked against the model's shape and written into the `bert_config!` invocation.

use super::Layout;

/// Zhang and He's defaults: half the blocks kept in the end, reached over a few thousand steps.
pub const DEFAULT_THETA_BAR: f64 = 0.5;
pub const DEFAULT_GAMMA: f64 = 0.001;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DropArgs {
    /// Token dropping: the 0-based split layer; the layers after it up to the last one see only
    /// the kept tokens. Needs --kept-tokens or --kept-ratio.
    #[arg(long, value_name = "D")]
    pub token_drop_layer: Option<usize>,
    /// Tokens per sequence the dropped layers keep.
    #[arg(long, value_name = "K")]
    pub kept_tokens: Option<usize>,
    /// Kept tokens as a fraction of --seq (rounded, at least 1).
    #[arg(long, value_name = "R")]
    pub kept_ratio: Option<f64>,
    /// Progressive layer dropping (needs --layout pre-ln).
    #[arg(long)]
    pub layer_drop: bool,
    /// The keep probability the schedule decays to [default: 0.5].
    #[arg(long, value_name = "X")]
    pub theta_bar: Option<f64>,
    /// How fast the keep probability decays per step [default: 0.001].
    #[arg(long, value_name = "Y")]
    pub gamma: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenDrop {
    pub layer: usize,
    pub kept: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDrop {
    pub theta_bar: f64,
    pub gamma: f64,
}

/// The drop settings a model is compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Drops {
    pub token: Option<TokenDrop>,
    pub layer: Option<LayerDrop>,
}

impl DropArgs {
    /// Checks the flags against the model's shape; the messages name the flags to fix.
    pub fn resolve(&self, seq: usize, num_layers: usize, layout: Layout) -> Result<Drops, String> {
        Ok(Drops {
            token: self.token_drop(seq, num_layers)?,
            layer: self.layer_drop(layout)?,
        })
    }

    fn token_drop(&self, seq: usize, num_layers: usize) -> Result<Option<TokenDrop>, String> {
        let Some(layer) = self.token_drop_layer else {
            if self.kept_tokens.is_some() || self.kept_ratio.is_some() {
                return Err("--kept-tokens and --kept-ratio need --token-drop-layer".into());
            }
            return Ok(None);
        };
        let kept = match (self.kept_tokens, self.kept_ratio) {
            (Some(_), Some(_)) => {
                return Err("give one of --kept-tokens and --kept-ratio, not both".into())
            }
            (None, None) => {
                return Err("--token-drop-layer needs --kept-tokens or --kept-ratio".into())
            }
            (Some(kept), None) => kept,
            (None, Some(ratio)) => {
                if !(ratio > 0.0 && ratio <= 1.0) {
                    return Err(format!("--kept-ratio {ratio} must lie in (0, 1]"));
                }
                ((ratio * seq as f64).round() as usize).max(1)
            }
        };
        if num_layers < 2 {
            return Err(format!(
                "token dropping needs at least 2 layers; the model has {num_layers}"
            ));
        }
        if layer + 1 >= num_layers {
            return Err(format!(
                "--token-drop-layer {layer} must lie before the last layer: at most {} for {num_layers} layers",
                num_layers - 2
            ));
        }
        if kept == 0 {
            return Err("--kept-tokens must be at least 1".into());
        }
        if kept > seq {
            return Err(format!("--kept-tokens {kept} exceeds --seq {seq}"));
        }
        Ok(Some(TokenDrop { layer, kept }))
    }

    fn layer_drop(&self, layout: Layout) -> Result<Option<LayerDrop>, String> {
        if !self.layer_drop {
            if self.theta_bar.is_some() || self.gamma.is_some() {
                return Err("--theta-bar and --gamma need --layer-drop".into());
            }
            return Ok(None);
        }
        if layout != Layout::PreLn {
            return Err(
                "--layer-drop needs --layout pre-ln (progressive layer dropping skips pre-LN blocks)"
                    .into(),
            );
        }
        let theta_bar = self.theta_bar.unwrap_or(DEFAULT_THETA_BAR);
        let gamma = self.gamma.unwrap_or(DEFAULT_GAMMA);
        if !(theta_bar > 0.0 && theta_bar <= 1.0) {
            return Err(format!("--theta-bar {theta_bar} must lie in (0, 1]"));
        }
        if !(gamma > 0.0 && gamma.is_finite()) {
            return Err(format!("--gamma {gamma} must be a positive number"));
        }
        Ok(Some(LayerDrop { theta_bar, gamma }))
    }
}

impl Drops {
    /// The `token_drop: ..., layer_drop: ...` fields of the `bert_config!` invocation.
    pub fn macro_fields(&self) -> String {
        let token = match self.token {
            Some(TokenDrop { layer, kept }) => format!("{{ layer: {layer}, kept: {kept} }}"),
            None => "off".into(),
        };
        // `{:?}` always writes a float literal (`1.0`, not `1`).
        let layer = match self.layer {
            Some(LayerDrop { theta_bar, gamma }) => {
                format!("{{ theta_bar: {theta_bar:?}, gamma: {gamma:?} }}")
            }
            None => "off".into(),
        };
        format!("token_drop: {token}, layer_drop: {layer}")
    }

    /// `-td<D>k<K>` and `-ld<theta_bar>` (with `g<gamma>` where gamma is not the default), decimal
    /// points written `p`: cargo package names allow no dots.
    pub fn name_suffix(&self) -> String {
        let mut suffix = String::new();
        if let Some(TokenDrop { layer, kept }) = self.token {
            suffix += &format!("-td{layer}k{kept}");
        }
        if let Some(LayerDrop { theta_bar, gamma }) = self.layer {
            suffix += &format!("-ld{}", name_number(theta_bar));
            if gamma != DEFAULT_GAMMA {
                suffix += &format!("g{}", name_number(gamma));
            }
        }
        suffix
    }
}

/// A number as it may appear in a package name: `0.5` -> `0p5`.
pub fn name_number(x: f64) -> String {
    format!("{x}").replace('.', "p").replace('-', "m")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(extra: &[&str]) -> DropArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            drops: DropArgs,
        }
        Cli::try_parse_from(std::iter::once(&"x").chain(extra))
            .unwrap()
            .drops
    }

    fn resolve(extra: &[&str], layout: Layout) -> Result<Drops, String> {
        flags(extra).resolve(128, 4, layout)
    }

    #[test]
    fn no_flags_no_drops() {
        let drops = resolve(&[], Layout::PostLn).unwrap();
        assert_eq!(drops, Drops::default());
        assert_eq!(drops.macro_fields(), "token_drop: off, layer_drop: off");
        assert_eq!(drops.name_suffix(), "");
    }

    #[test]
    fn token_drop_takes_a_count_or_a_ratio() {
        let drops = resolve(
            &["--token-drop-layer", "1", "--kept-tokens", "64"],
            Layout::PostLn,
        );
        let expected = Some(TokenDrop { layer: 1, kept: 64 });
        assert_eq!(drops.unwrap().token, expected);
        let drops = resolve(
            &["--token-drop-layer", "1", "--kept-ratio", "0.5"],
            Layout::PostLn,
        );
        assert_eq!(drops.unwrap().token, expected);
        // round(0.3 * 128) = 38; a tiny ratio still keeps one token.
        let drops = resolve(
            &["--token-drop-layer", "2", "--kept-ratio", "0.3"],
            Layout::PostLn,
        );
        assert_eq!(drops.unwrap().token.unwrap().kept, 38);
        let drops = resolve(
            &["--token-drop-layer", "0", "--kept-ratio", "0.001"],
            Layout::PostLn,
        );
        assert_eq!(drops.unwrap().token.unwrap().kept, 1);
    }

    #[test]
    fn bad_token_drop_flags_are_refused_with_a_reason() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--kept-tokens", "64"],
                "--kept-tokens and --kept-ratio need --token-drop-layer",
            ),
            (
                &["--token-drop-layer", "1"],
                "--token-drop-layer needs --kept-tokens or --kept-ratio",
            ),
            (
                &[
                    "--token-drop-layer",
                    "1",
                    "--kept-tokens",
                    "64",
                    "--kept-ratio",
                    "0.5",
                ],
                "give one of --kept-tokens and --kept-ratio, not both",
            ),
            (
                &["--token-drop-layer", "3", "--kept-tokens", "64"],
                "--token-drop-layer 3 must lie before the last layer: at most 2 for 4 layers",
            ),
            (
                &["--token-drop-layer", "1", "--kept-tokens", "129"],
                "--kept-tokens 129 exceeds --seq 128",
            ),
            (
                &["--token-drop-layer", "1", "--kept-tokens", "0"],
                "--kept-tokens must be at least 1",
            ),
            (
                &["--token-drop-layer", "1", "--kept-ratio", "1.5"],
                "--kept-ratio 1.5 must lie in (0, 1]",
            ),
            (
                &["--token-drop-layer", "1", "--kept-ratio", "0"],
                "--kept-ratio 0 must lie in (0, 1]",
            ),
        ];
        for (extra, message) in cases {
            assert_eq!(resolve(extra, Layout::PostLn).unwrap_err(), *message);
        }
        let one_layer = flags(&["--token-drop-layer", "0", "--kept-tokens", "8"]).resolve(
            128,
            1,
            Layout::PostLn,
        );
        assert_eq!(
            one_layer.unwrap_err(),
            "token dropping needs at least 2 layers; the model has 1"
        );
    }

    #[test]
    fn layer_drop_has_defaults_and_needs_pre_ln() {
        let drops = resolve(&["--layer-drop"], Layout::PreLn).unwrap();
        let defaults = LayerDrop {
            theta_bar: 0.5,
            gamma: 0.001,
        };
        assert_eq!(drops.layer, Some(defaults));
        let drops = resolve(
            &["--layer-drop", "--theta-bar", "0.7", "--gamma", "0.02"],
            Layout::PreLn,
        );
        assert_eq!(
            drops.unwrap().layer,
            Some(LayerDrop {
                theta_bar: 0.7,
                gamma: 0.02
            })
        );
        let cases: &[(&[&str], Layout, &str)] = &[
            (
                &["--layer-drop"],
                Layout::PostLn,
                "--layer-drop needs --layout pre-ln (progressive layer dropping skips pre-LN blocks)",
            ),
            (
                &["--theta-bar", "0.5"],
                Layout::PreLn,
                "--theta-bar and --gamma need --layer-drop",
            ),
            (
                &["--layer-drop", "--theta-bar", "0"],
                Layout::PreLn,
                "--theta-bar 0 must lie in (0, 1]",
            ),
            (
                &["--layer-drop", "--gamma=-1"],
                Layout::PreLn,
                "--gamma -1 must be a positive number",
            ),
        ];
        for (extra, layout, message) in cases {
            assert_eq!(resolve(extra, *layout).unwrap_err(), *message);
        }
    }

    #[test]
    fn writes_the_macro_fields_and_the_name_suffix() {
        let drops = Drops {
            token: Some(TokenDrop { layer: 1, kept: 64 }),
            layer: Some(LayerDrop {
                theta_bar: 0.5,
                gamma: 0.001,
            }),
        };
        assert_eq!(
            drops.macro_fields(),
            "token_drop: { layer: 1, kept: 64 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 }"
        );
        assert_eq!(drops.name_suffix(), "-td1k64-ld0p5");
        let whole = Drops {
            token: None,
            layer: Some(LayerDrop {
                theta_bar: 1.0,
                gamma: 0.02,
            }),
        };
        assert_eq!(
            whole.macro_fields(),
            "token_drop: off, layer_drop: { theta_bar: 1.0, gamma: 0.02 }"
        );
        assert_eq!(whole.name_suffix(), "-ld1g0p02");
    }
}
