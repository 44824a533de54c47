//! Checkpoint names. dropbert keys parameters by their `BertModel` path (`embeddings.…`,
//! `encoder.…`, `pooler.…`) plus `cls.predictions.…` for the MLM head; checkpoints may carry the
//! `bert.` prefix of `BertForMaskedLM`, TensorFlow-era `gamma`/`beta` names, and tied or unused
//! tensors that have no parameter of their own.

/// The canonical name of a checkpoint tensor, or `None` for a tensor that is no parameter of
/// dropbert's model (buffers, the tied decoder weight, the next-sentence head).
pub fn canonical_name(checkpoint_name: &str) -> Option<String> {
    let name = checkpoint_name
        .strip_prefix("bert.")
        .unwrap_or(checkpoint_name);
    if name == "embeddings.position_ids"
        || name == "cls.predictions.decoder.weight"
        || name.starts_with("cls.seq_relationship.")
    {
        return None;
    }
    if name == "cls.predictions.decoder.bias" {
        return Some("cls.predictions.bias".into());
    }
    let name = if name.contains("LayerNorm.") {
        name.replace("LayerNorm.gamma", "LayerNorm.weight")
            .replace("LayerNorm.beta", "LayerNorm.bias")
    } else {
        name.to_string()
    };
    Some(name)
}

/// The name a canonical parameter has in a `BertForMaskedLM` checkpoint.
pub fn export_name(canonical: &str) -> String {
    if canonical.starts_with("cls.") {
        canonical.to_string()
    } else {
        format!("bert.{canonical}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_lm_and_base_model_names_meet() {
        assert_eq!(
            canonical_name("bert.encoder.layer.0.output.dense.weight").as_deref(),
            Some("encoder.layer.0.output.dense.weight")
        );
        assert_eq!(
            canonical_name("encoder.layer.0.output.dense.weight").as_deref(),
            Some("encoder.layer.0.output.dense.weight")
        );
        assert_eq!(
            canonical_name("bert.embeddings.LayerNorm.gamma").as_deref(),
            Some("embeddings.LayerNorm.weight")
        );
        assert_eq!(
            canonical_name("cls.predictions.decoder.bias").as_deref(),
            Some("cls.predictions.bias")
        );
        assert_eq!(canonical_name("cls.predictions.decoder.weight"), None);
        assert_eq!(canonical_name("bert.embeddings.position_ids"), None);
    }

    #[test]
    fn export_names_are_masked_lm_names() {
        assert_eq!(
            export_name("embeddings.word_embeddings.weight"),
            "bert.embeddings.word_embeddings.weight"
        );
        assert_eq!(export_name("cls.predictions.bias"), "cls.predictions.bias");
    }
}
