//! dropbert: pretrain BERT-style encoders faster by dropping work, on the luminal graph compiler.
pub mod config;
pub mod data;
pub mod error;

pub use error::{DropbertError, Result};
