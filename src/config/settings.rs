use crate::nn::Dropout;

/// The run-time part of a model's configuration: values a checkpoint's `config.json` sets that do
/// not change any tensor's shape, so they need no separate binary.
#[derive(Debug, Clone)]
pub struct BertSettings {
    pub layer_norm_eps: f32,
    pub initializer_range: f32,
    /// Dropout while training; [`Dropout::off`] for inference.
    pub dropout: Dropout,
}

impl BertSettings {
    /// The same settings without dropout, as inference runs.
    pub fn for_inference(&self) -> Self {
        Self {
            dropout: Dropout::off(),
            ..self.clone()
        }
    }
}

impl Default for BertSettings {
    fn default() -> Self {
        Self {
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
            dropout: Dropout::off(),
        }
    }
}
