//! dropbert's own luminal compiler passes.
pub mod cpu;
pub mod cuda;
