//! The run-time side of dropping work: token dropping's settings and importance table,
//! progressive layer dropping's keep schedule and gates, the program that skips gated-off
//! blocks, and the cost model of a step. The graph side is in [`crate::nn::EncoderDrops`] and
//! [`crate::ops`].
mod cost;
mod cost_report;
mod gate_schedule;
mod graph_cost;
mod layer_drop;
mod plan;
mod token_drop;

pub use cost::{StepCost, StepShape};
pub use cost_report::CostReport;
pub use gate_schedule::GateSchedule;
pub use graph_cost::{counted_matmul_flops, saved_activation_bytes};
pub use layer_drop::{LayerDropSchedule, StepGates};
pub use plan::DropPlan;
pub use token_drop::{Selection, TokenDropSettings, ALLOW_IMPORTANCE, DENY_IMPORTANCE};
