//! Optimizers and learning-rate schedules whose updates run inside the compiled graph: AdamW and
//! LAMB, global gradient-norm clipping, Hugging Face's schedules, BERT's no-decay rule. Parameters
//! and optimizer state stay resident in the graph between steps (see [`Optimizer`]). Like
//! [`crate::nn`], nothing here names a backend.
mod adamw;
mod clipping;
mod decay;
mod flat;
mod lamb;
mod optimizer;
mod schedule;
mod step_scalars;
mod update;

pub use adamw::AdamW;
pub use clipping::{clip_global_norm, clip_scale, global_norm, ClippedGradients, CLIP_EPSILON};
pub use decay::decays;
pub use flat::{flat_view, flatten, FlatTensor};
pub use lamb::{trust_ratio, Lamb};
pub use optimizer::{
    Algorithm, Optimizer, OptimizerSettings, ParameterGradient, ResidentTensor, StepReport,
    STATE_SUFFIXES,
};
pub use schedule::LearningRateSchedule;
pub use step_scalars::{StepScalarValues, StepScalars};
pub use update::{NodeOutput, UpdateInputs, UpdateOutputs, UpdateRule};
