use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::RunConfig;
use crate::{
    data::{mlm_batches::DataPosition, tokenizer::WordPieceTokenizer},
    hf::{
        read_tensor_file, save_checkpoint, write_atomically, write_tensor_file, HfBertConfig,
        TensorData,
    },
    nn::ParameterRef,
    DropbertError, Result,
};

/// Where a run stands, beside the weights of a training checkpoint: with the optimizer state it
/// is all a resumed run needs to continue exactly where this one stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    pub configuration: String,
    pub steps_taken: u64,
    pub data_position: DataPosition,
    pub dataset_fingerprint: u64,
    pub run: RunConfig,
}

/// A training checkpoint: a Hugging Face checkpoint folder (config.json, model.safetensors,
/// vocab.txt) plus `optimizer_state.safetensors`, `training_state.json` and, under token
/// dropping, `token_importance.safetensors` (the importance table, which is training state,
/// not part of the model).
pub struct TrainingCheckpoint;

/// What a training checkpoint holds beside the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedTraining {
    pub state: TrainingState,
    pub optimizer: BTreeMap<String, Vec<f32>>,
    pub importance: Option<Vec<f32>>,
}

const OPTIMIZER_STATE: &str = "optimizer_state.safetensors";
const TOKEN_IMPORTANCE: &str = "token_importance.safetensors";
const TRAINING_STATE: &str = "training_state.json";

impl TrainingCheckpoint {
    /// Writes the checkpoint into a temporary sibling folder, then renames it to `dir`, so `dir`
    /// is always either the previous complete checkpoint or the new complete one.
    #[allow(clippy::too_many_arguments)]
    pub fn save(
        dir: &Path,
        config: &HfBertConfig,
        parameters: &[ParameterRef],
        weights: &[Vec<f32>],
        tokenizer: &WordPieceTokenizer,
        optimizer_state: &[(String, Vec<f32>)],
        importance: Option<&[f32]>,
        state: &TrainingState,
    ) -> Result<()> {
        let temporary = temporary_sibling(dir);
        if temporary.exists() {
            std::fs::remove_dir_all(&temporary).map_err(|e| DropbertError::io(&temporary, e))?;
        }
        save_checkpoint(&temporary, config, parameters, weights, tokenizer)?;
        let shapes: BTreeMap<&str, &[usize]> = parameters
            .iter()
            .map(|p| (p.name.as_str(), p.shape.as_slice()))
            .collect();
        let tensors = optimizer_state
            .iter()
            .map(|(name, values)| {
                let parameter = name.rsplit_once('.').map(|(p, _)| p).unwrap_or(name);
                let shape = shapes
                    .get(parameter)
                    .map(|s| s.to_vec())
                    .unwrap_or_else(|| vec![values.len()]);
                (name.clone(), TensorData::f32(shape, values.clone()))
            })
            .collect();
        write_tensor_file(&temporary.join(OPTIMIZER_STATE), &tensors)?;
        if let Some(table) = importance {
            let tensors = BTreeMap::from([(
                "token_importance".to_string(),
                TensorData::f32(vec![table.len()], table.to_vec()),
            )]);
            write_tensor_file(&temporary.join(TOKEN_IMPORTANCE), &tensors)?;
        }
        let json = serde_json::to_string_pretty(state).expect("training state serializes");
        write_atomically(&temporary.join(TRAINING_STATE), json.as_bytes())?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| DropbertError::io(dir, e))?;
        }
        std::fs::rename(&temporary, dir).map_err(|e| DropbertError::io(dir, e))
    }

    /// What the checkpoint in `dir` holds beside the weights.
    pub fn load(dir: &Path) -> Result<SavedTraining> {
        let path = dir.join(TRAINING_STATE);
        let text = std::fs::read_to_string(&path).map_err(|e| DropbertError::io(&path, e))?;
        let state = serde_json::from_str(&text).map_err(|e| DropbertError::Json {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let optimizer = read_tensor_file(&dir.join(OPTIMIZER_STATE))?
            .into_iter()
            .map(|(name, tensor)| (name, tensor.to_f32()))
            .collect();
        let importance_path = dir.join(TOKEN_IMPORTANCE);
        let importance = if importance_path.is_file() {
            let tensors = read_tensor_file(&importance_path)?;
            let table =
                tensors
                    .get("token_importance")
                    .ok_or_else(|| DropbertError::MissingTensor {
                        path: importance_path.clone(),
                        name: "token_importance".into(),
                    })?;
            Some(table.to_f32())
        } else {
            None
        };
        Ok(SavedTraining {
            state,
            optimizer,
            importance,
        })
    }
}

fn temporary_sibling(dir: &Path) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".partial{}", std::process::id()));
    dir.with_file_name(name)
}
