/// The run-time part of a model's configuration: values a checkpoint's `config.json` sets that do
/// not change any tensor's shape, so they need no separate binary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BertSettings {
    pub layer_norm_eps: f32,
    pub initializer_range: f32,
}

impl Default for BertSettings {
    fn default() -> Self {
        Self {
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
        }
    }
}
