//! Hugging Face interop: `config.json`, `model.safetensors` and `vocab.txt` checkpoints.
mod checkpoint;
mod config;
mod names;
mod tensor_file;

pub use checkpoint::{initial_values, load_weights, save_checkpoint, LoadReport, MissingPolicy};
pub use config::HfBertConfig;
pub use names::{canonical_name, export_name};
pub use tensor_file::{
    read_tensor_file, write_atomically, write_tensor_file, TensorData, TensorValues,
};
