//! dropbert: pretrain BERT-style encoders faster by dropping work, on the luminal graph compiler.
pub mod autograd;
pub mod cli;
pub mod compile;
pub mod config;
pub mod data;
pub mod drop;
pub mod error;
pub mod hf;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod runtime;
pub mod train;

pub use error::{DropbertError, Result};

/// Re-exported for [`bert_config!`], so crates using the macro need no luminal dependency.
#[doc(hidden)]
pub use luminal;
