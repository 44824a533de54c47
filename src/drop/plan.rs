use super::{LayerDropSchedule, TokenDropSettings};
use crate::{config::BertConfig, data::tokenizer::SpecialTokenIds, DropbertError, Result};

/// What a training graph drops: token dropping's settings (with the vocabulary's special ids)
/// and layer dropping's schedule, each present only where the configuration compiles the
/// method in. Evaluation and inference drop nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DropPlan {
    pub token_drop: Option<(TokenDropSettings, SpecialTokenIds)>,
    pub layer_drop: Option<LayerDropSchedule>,
}

impl DropPlan {
    pub fn none() -> Self {
        Self::default()
    }

    /// The plan of `C`'s training: the methods compiled in, with a run's settings where it
    /// gives them (else the defaults, and the configuration's layer-drop schedule). Settings
    /// for a method `C` was compiled without are refused.
    pub fn for_training<C: BertConfig>(
        token_drop: Option<TokenDropSettings>,
        layer_drop: Option<LayerDropSchedule>,
        special: SpecialTokenIds,
    ) -> Result<Self> {
        let refuse = |section: &str, method: &str| {
            Err(DropbertError::InvalidInput(format!(
                "the run has a [{section}] section, but {} was compiled without {method}; rebuild it with the method (cargo xtask build-model --help) or remove the section",
                C::NAME
            )))
        };
        let token_drop = match (C::DIMS.token_drop, token_drop) {
            (None, Some(_)) => return refuse("token_drop", "token dropping"),
            (None, None) => None,
            (Some(_), settings) => {
                let settings = settings.unwrap_or_default();
                settings.check()?;
                Some((settings, special))
            }
        };
        let layer_drop = match (C::DIMS.layer_drop, layer_drop) {
            (None, Some(_)) => return refuse("layer_drop", "progressive layer dropping"),
            (None, None) => None,
            (Some(compiled), schedule) => {
                let schedule = schedule.unwrap_or(compiled.into());
                schedule.check()?;
                Some(schedule)
            }
        };
        Ok(Self {
            token_drop,
            layer_drop,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.token_drop.is_none() && self.layer_drop.is_none()
    }
}
