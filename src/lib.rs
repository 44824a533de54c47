//! dropbert: pretrain BERT-style encoders faster by dropping work, on the luminal graph compiler.
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod hf;
pub mod nn;
pub mod runtime;

pub use error::{DropbertError, Result};
