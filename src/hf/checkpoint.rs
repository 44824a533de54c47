use std::{collections::BTreeMap, path::Path};

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::{
    config::HfBertConfig,
    names::{canonical_name, export_name},
    tensor_file::{read_tensor_file, write_tensor_file, TensorData},
};
use crate::{
    config::BertSettings,
    data::tokenizer::WordPieceTokenizer,
    nn::{ParameterInit, ParameterRef},
    DropbertError, Result,
};

/// What to do with a parameter the checkpoint does not have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MissingPolicy<'a> {
    /// Every parameter must be in the checkpoint.
    Refuse,
    /// Parameters whose name starts with one of these prefixes are initialised as BERT initialises
    /// them (seeded); any other missing parameter is an error. Loading a `BertModel` checkpoint
    /// into `BertForMaskedLM`, for example, initialises `cls.predictions.`.
    Initialize { prefixes: &'a [&'a str], seed: u64 },
}

/// What loading did besides copying tensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    /// Parameters the checkpoint lacked, initialised instead.
    pub initialized: Vec<String>,
    /// Checkpoint tensors that no parameter of the model took (for example a pooler the model
    /// does not build).
    pub unused: Vec<String>,
}

/// Reads `<dir>/model.safetensors` and returns the values of `parameters` (named canonically, as
/// [`Parameters`](crate::nn::Parameters) names them), in their order, checked against their shapes.
pub fn load_weights(
    dir: &Path,
    parameters: &[ParameterRef],
    settings: &BertSettings,
    policy: MissingPolicy<'_>,
) -> Result<(Vec<Vec<f32>>, LoadReport)> {
    let path = dir.join("model.safetensors");
    if !path.exists() {
        let hint = if dir.join("pytorch_model.bin").exists() {
            " (only pytorch_model.bin is there: re-save it with transformers' save_pretrained(..., safe_serialization=True))"
        } else {
            ""
        };
        return Err(DropbertError::InvalidInput(format!(
            "{}: no model.safetensors{hint}",
            dir.display()
        )));
    }
    let mut tensors: BTreeMap<String, (String, TensorData)> = BTreeMap::new();
    let mut report = LoadReport::default();
    for (name, tensor) in read_tensor_file(&path)? {
        match canonical_name(&name) {
            Some(canonical) => {
                tensors.insert(canonical, (name, tensor));
            }
            None => report.unused.push(name),
        }
    }
    let mut rng = StdRng::seed_from_u64(match policy {
        MissingPolicy::Initialize { seed, .. } => seed,
        MissingPolicy::Refuse => 0,
    });
    let mut values = Vec::with_capacity(parameters.len());
    for parameter in parameters {
        let canonical = canonical_name(&parameter.name).unwrap_or_else(|| parameter.name.clone());
        match tensors.remove(&canonical) {
            Some((name, tensor)) => {
                if tensor.shape != parameter.shape {
                    return Err(DropbertError::TensorShape {
                        path,
                        name,
                        found: tensor.shape,
                        expected: parameter.shape.clone(),
                    });
                }
                values.push(tensor.to_f32());
                report.loaded.push(canonical);
            }
            None => {
                let may_initialize = match policy {
                    MissingPolicy::Initialize { prefixes, .. } => {
                        prefixes.iter().any(|p| canonical.starts_with(p))
                    }
                    MissingPolicy::Refuse => false,
                };
                if !may_initialize {
                    return Err(DropbertError::MissingTensor {
                        path,
                        name: export_name(&canonical),
                    });
                }
                values.push(initial_values(parameter, settings, &mut rng));
                report.initialized.push(canonical);
            }
        }
    }
    report
        .unused
        .extend(tensors.into_values().map(|(name, _)| name));
    Ok((values, report))
}

/// BERT's initialisation of one parameter.
pub fn initial_values(
    parameter: &ParameterRef,
    settings: &BertSettings,
    rng: &mut StdRng,
) -> Vec<f32> {
    match parameter.init {
        ParameterInit::Zeros => vec![0.0; parameter.numel()],
        ParameterInit::Ones => vec![1.0; parameter.numel()],
        ParameterInit::Normal => {
            let normal = Normal::new(0.0, settings.initializer_range)
                .expect("initializer_range is a finite standard deviation");
            (0..parameter.numel()).map(|_| normal.sample(rng)).collect()
        }
    }
}

/// Writes a checkpoint `transformers` loads as `BertForMaskedLM`: `config.json`,
/// `model.safetensors` (the tied decoder weight is left out, as transformers leaves it out),
/// `vocab.txt` and `tokenizer_config.json`.
pub fn save_checkpoint(
    dir: &Path,
    config: &HfBertConfig,
    parameters: &[ParameterRef],
    values: &[Vec<f32>],
    tokenizer: &WordPieceTokenizer,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DropbertError::io(dir, e))?;
    let tensors = parameters
        .iter()
        .zip(values)
        .map(|(parameter, values)| {
            let canonical =
                canonical_name(&parameter.name).unwrap_or_else(|| parameter.name.clone());
            (
                export_name(&canonical),
                TensorData::f32(parameter.shape.clone(), values.clone()),
            )
        })
        .collect();
    write_tensor_file(&dir.join("model.safetensors"), &tensors)?;
    config.write(&dir.join("config.json"))?;
    tokenizer.save_vocab(&dir.join("vocab.txt"))?;
    let tokenizer_config = serde_json::json!({
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": tokenizer.lowercase(),
    });
    super::tensor_file::write_atomically(
        &dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tokenizer_config)
            .expect("json serializes")
            .as_bytes(),
    )
}
