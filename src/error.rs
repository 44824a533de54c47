use std::path::PathBuf;

/// Everything that can go wrong in dropbert that a user can fix: each variant names the offending
/// value and, where it helps, what would be valid.
#[derive(Debug, thiserror::Error)]
pub enum DropbertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("checkpoint {key} = {found} does not match the compiled configuration {config} ({key} = {compiled})")]
    ConfigMismatch {
        key: &'static str,
        found: String,
        compiled: String,
        config: &'static str,
    },
    #[error("checkpoint setting {key} = {found} is not supported: {expected}")]
    Unsupported {
        key: &'static str,
        found: String,
        expected: String,
    },
    #[error("{path}: tensor {name} is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor {name} has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor {name} has dtype {found}, expected {expected}")]
    TensorDtype {
        path: PathBuf,
        name: String,
        found: String,
        expected: String,
    },
    #[error("{path}: vocabulary problem: {message}")]
    Vocabulary { path: PathBuf, message: String },
    #[error("{0}")]
    InvalidInput(String),
}

pub type Result<T, E = DropbertError> = std::result::Result<T, E>;

impl DropbertError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DropbertError::Io {
            path: path.into(),
            source,
        }
    }
}
