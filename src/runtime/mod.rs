//! Turning a model graph into a program for one backend, feeding it and reading it back. This is
//! the only place that names a backend.
mod backend;
mod device_clock;
mod forward_program;
mod gradient_program;
mod hidden_states;
mod host_values;
mod masked_lm_graph;
mod matmul_precision;
pub mod profile;

pub use backend::Backend;
pub use device_clock::{device_memory, reset_device_memory_peak, DeviceMemory, StepClock};
pub use forward_program::ForwardProgram;
pub use gradient_program::{GradientProgram, StepOutputs};
pub use hidden_states::{hidden_state_program, HiddenStateProgram};
pub use host_values::{host_values, output_values, tensor_values, TakenOutput};
pub use masked_lm_graph::{LossOutputs, MaskedLmGraph, TakenLossOutputs};
pub use matmul_precision::MatmulPrecision;
