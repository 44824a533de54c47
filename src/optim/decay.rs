//! Which parameters get weight decay.

/// Whether weight decay applies to the parameter `parameter_name` (its Hugging Face name): not to
/// biases and not to LayerNorm weights, the `no_decay = ["bias", "LayerNorm.weight"]` rule of
/// Hugging Face's BERT pretraining scripts, extended to every LayerNorm module, which covers
/// dropbert's Pre-LN names (`PreAttentionLayerNorm`, `PostAttentionLayerNorm`, `FinalLayerNorm`).
pub fn decays(parameter_name: &str) -> bool {
    let (module, leaf) = parameter_name
        .rsplit_once('.')
        .unwrap_or(("", parameter_name));
    if leaf == "bias" {
        return false;
    }
    let module_name = module.rsplit('.').next().unwrap_or(module);
    !module_name.ends_with("LayerNorm")
}

#[cfg(test)]
mod tests {
    use super::decays;

    #[test]
    fn matrices_and_embeddings_decay() {
        for name in [
            "bert.embeddings.word_embeddings.weight",
            "bert.embeddings.position_embeddings.weight",
            "bert.encoder.layer.0.attention.self.query.weight",
            "encoder.layer.11.output.dense.weight",
            "bert.pooler.dense.weight",
            "cls.predictions.transform.dense.weight",
        ] {
            assert!(decays(name), "{name}");
        }
    }

    #[test]
    fn biases_and_layer_norms_do_not() {
        for name in [
            "bert.encoder.layer.0.attention.self.query.bias",
            "cls.predictions.bias",
            "bert.embeddings.LayerNorm.weight",
            "bert.embeddings.LayerNorm.bias",
            "bert.encoder.layer.3.attention.output.LayerNorm.weight",
            "cls.predictions.transform.LayerNorm.weight",
            "bert.encoder.layer.0.PreAttentionLayerNorm.weight",
            "bert.encoder.layer.0.PostAttentionLayerNorm.weight",
            "bert.encoder.FinalLayerNorm.weight",
            "encoder.FinalLayerNorm.bias",
        ] {
            assert!(!decays(name), "{name}");
        }
    }
}
