//! The integration tests, one crate: built once, they share the compiled configurations and
//! one link, where a crate per file compiled each configuration it used again.
mod common;

mod checkpoint_roundtrip;
mod config_dims;
mod data_pipeline;
mod drop_invariants;
mod drop_parity;
mod grads_parity;
mod hf_forward_parity;
mod hidden_cli;
mod optimizer_parity;
mod pretrain_resume;
mod real_checkpoint;
mod tokenizer_parity;
