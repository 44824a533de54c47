//! Pretraining: the compiled training step (forward, backward, optimizer update in one graph),
//! evaluation, training checkpoints and the loop that drives them.
mod evaluation;
mod metrics;
mod run_config;
mod synthetic;
mod trainer;
mod training_checkpoint;
mod training_program;

pub use evaluation::{EvaluationProgram, ValidationMetrics};
pub use metrics::MetricsLog;
pub use run_config::RunConfig;
pub use synthetic::synthetic_batch;
pub use trainer::{pretrain, PretrainOutcome};
pub use training_checkpoint::{TrainingCheckpoint, TrainingState};
pub use training_program::{QueuedStep, TrainStep, TrainingProgram};
