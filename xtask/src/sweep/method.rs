//! A sweep's ways of dropping work: the `[[method]]` entries of a grid.

use serde::{Deserialize, Serialize};

use crate::build_model::drops::{name_number, DEFAULT_GAMMA, DEFAULT_THETA_BAR};
use crate::build_model::LayerDrop;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    /// Names the method in point names.
    pub label: String,
    pub kind: MethodKind,
    pub token_drop: Option<TokenDropMethod>,
    pub layer_drop: Option<LayerDropMethod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    Baseline,
    TokenDrop,
    LayerDrop,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenDropMethod {
    /// The 0-based split layer.
    pub layer: usize,
    pub kept_ratio: f64,
    /// The run's `[token_drop]` keys; those not given keep the binary's defaults.
    pub selection: Option<String>,
    pub random_fraction: Option<f64>,
    pub beta: Option<f64>,
    pub initial_importance: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LayerDropMethod {
    pub theta_bar: f64,
    pub gamma: f64,
}

impl From<LayerDropMethod> for LayerDrop {
    fn from(method: LayerDropMethod) -> Self {
        LayerDrop {
            theta_bar: method.theta_bar,
            gamma: method.gamma,
        }
    }
}

/// A `[[method]]` as written: every key any kind takes; [`MethodEntry::resolve`] checks that
/// each kind has the keys it needs and no others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodEntry {
    kind: MethodKind,
    name: Option<String>,
    layer: Option<usize>,
    kept_ratio: Option<f64>,
    theta_bar: Option<f64>,
    gamma: Option<f64>,
    selection: Option<String>,
    random_fraction: Option<f64>,
    beta: Option<f64>,
    initial_importance: Option<f64>,
}

const SELECTIONS: [&str; 3] = ["importance", "random", "mixed"];

impl MethodEntry {
    pub fn resolve(self, index: usize) -> Result<Method, String> {
        let kind = self.kind;
        let which = format!("method {} ({})", index + 1, kind_name(kind));
        let drops_tokens = matches!(kind, MethodKind::TokenDrop | MethodKind::Both);
        let drops_layers = matches!(kind, MethodKind::LayerDrop | MethodKind::Both);
        let given = |key: &str, present: bool, allowed: bool| -> Result<(), String> {
            if present && !allowed {
                return Err(format!("{which} does not take `{key}`"));
            }
            Ok(())
        };
        given("layer", self.layer.is_some(), drops_tokens)?;
        given("kept_ratio", self.kept_ratio.is_some(), drops_tokens)?;
        given("selection", self.selection.is_some(), drops_tokens)?;
        given(
            "random_fraction",
            self.random_fraction.is_some(),
            drops_tokens,
        )?;
        given("beta", self.beta.is_some(), drops_tokens)?;
        given(
            "initial_importance",
            self.initial_importance.is_some(),
            drops_tokens,
        )?;
        given("theta_bar", self.theta_bar.is_some(), drops_layers)?;
        given("gamma", self.gamma.is_some(), drops_layers)?;

        let token_drop = if drops_tokens {
            let layer = self.layer.ok_or_else(|| format!("{which} needs `layer`"))?;
            let kept_ratio = self
                .kept_ratio
                .ok_or_else(|| format!("{which} needs `kept_ratio`"))?;
            if !(kept_ratio > 0.0 && kept_ratio <= 1.0) {
                return Err(format!(
                    "{which}: kept_ratio {kept_ratio} must lie in (0, 1]"
                ));
            }
            if let Some(selection) = &self.selection {
                if !SELECTIONS.contains(&selection.as_str()) {
                    return Err(format!(
                        "{which}: selection must be \"importance\", \"random\" or \"mixed\", \
                         not {selection:?}"
                    ));
                }
            }
            Some(TokenDropMethod {
                layer,
                kept_ratio,
                selection: self.selection,
                random_fraction: self.random_fraction,
                beta: self.beta,
                initial_importance: self.initial_importance,
            })
        } else {
            None
        };
        let layer_drop = if drops_layers {
            let theta_bar = self.theta_bar.unwrap_or(DEFAULT_THETA_BAR);
            let gamma = self.gamma.unwrap_or(DEFAULT_GAMMA);
            if !(theta_bar > 0.0 && theta_bar <= 1.0) {
                return Err(format!("{which}: theta_bar {theta_bar} must lie in (0, 1]"));
            }
            if !(gamma > 0.0 && gamma.is_finite()) {
                return Err(format!("{which}: gamma {gamma} must be a positive number"));
            }
            Some(LayerDropMethod { theta_bar, gamma })
        } else {
            None
        };
        let label = match self.name {
            Some(name) => {
                super::grid::check_name(&name).map_err(|e| format!("{which}: {e}"))?;
                name
            }
            None => default_label(kind, token_drop.as_ref(), layer_drop.as_ref()),
        };
        Ok(Method {
            label,
            kind,
            token_drop,
            layer_drop,
        })
    }
}

pub fn kind_name(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Baseline => "baseline",
        MethodKind::TokenDrop => "token_drop",
        MethodKind::LayerDrop => "layer_drop",
        MethodKind::Both => "both",
    }
}

/// `baseline`, `td1r0p5` (split layer 1, kept ratio 0.5), `ld0p5g0p02` or both joined by `-`.
fn default_label(
    kind: MethodKind,
    token_drop: Option<&TokenDropMethod>,
    layer_drop: Option<&LayerDropMethod>,
) -> String {
    if kind == MethodKind::Baseline {
        return "baseline".into();
    }
    let mut parts = Vec::new();
    if let Some(token) = token_drop {
        parts.push(format!(
            "td{}r{}",
            token.layer,
            name_number(token.kept_ratio)
        ));
    }
    if let Some(layer) = layer_drop {
        parts.push(format!(
            "ld{}g{}",
            name_number(layer.theta_bar),
            name_number(layer.gamma)
        ));
    }
    parts.join("-")
}

impl Method {
    /// The method's parameters in one line, for tables: `layer=1 kept_ratio=0.5`.
    pub fn parameters(&self) -> String {
        let mut parts = Vec::new();
        if let Some(token) = &self.token_drop {
            parts.push(format!("layer={}", token.layer));
            parts.push(format!("kept_ratio={}", token.kept_ratio));
            if let Some(selection) = &token.selection {
                parts.push(format!("selection={selection}"));
            }
        }
        if let Some(layer) = &self.layer_drop {
            parts.push(format!("theta_bar={}", layer.theta_bar));
            parts.push(format!("gamma={}", layer.gamma));
        }
        parts.join(" ")
    }
}
