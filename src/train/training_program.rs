use std::collections::BTreeMap;

use crate::{
    config::{BertConfig, BertSettings},
    data::mlm_batches::MlmBatch,
    drop::{DropPlan, LayerDropSchedule, StepCost, StepGates, StepShape},
    nn::ParameterRef,
    optim::{Optimizer, OptimizerSettings, ParameterGradient, StepReport},
    runtime::{host_values, Backend, MaskedLmGraph, TakenLossOutputs},
    DropbertError, Result,
};

/// What one training step reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainStep {
    pub step: u64,
    pub loss: f32,
    pub learning_rate: f32,
    pub grad_norm: Option<f32>,
    pub predictions: usize,
    /// Per-prediction losses.
    pub token_losses: Vec<f32>,
    /// Matrix-multiply FLOPs of the step, as [`StepCost`] counts them.
    pub flops: f64,
    /// Which blocks ran (all, without layer dropping).
    pub gates: Vec<bool>,
    /// Host time spent in the graph's execution: on the GPU, the time to queue the step's kernels
    /// (luminal's interpreter, allocations, launches) plus any wait for the device inside it
    /// (queued behind another step, the host waits for room in the device's queue).
    pub execute_host_seconds: f64,
    /// Host time from the step's start to the program's execution: feeding the batch, the
    /// gates and the optimizer's scalars (the device waits through it, unless it is running
    /// the step queued before).
    pub prepare_host_seconds: f64,
    /// On the GPU, host time from the program's execution until every upload of its inputs was
    /// queued, before the first kernel (as the preparation, an idle device's wait).
    pub uploads_host_seconds: Option<f64>,
}

/// A step queued by [`TrainingProgram::queue_step`] whose results are not read yet.
pub struct QueuedStep {
    losses: TakenLossOutputs,
    report: StepReport,
    predictions: usize,
    flops: f64,
    gates: Vec<bool>,
    execute_host_seconds: f64,
    prepare_host_seconds: f64,
    uploads_host_seconds: Option<f64>,
}

impl QueuedStep {
    /// The step's report: waits for the step to end, where it runs on a device.
    pub fn finish(self) -> TrainStep {
        let losses = self.losses.read();
        TrainStep {
            step: self.report.step,
            loss: losses.loss,
            learning_rate: self.report.learning_rate,
            grad_norm: self.report.grad_norm(),
            predictions: self.predictions,
            token_losses: losses.token_losses,
            flops: self.flops,
            gates: self.gates,
            execute_host_seconds: self.execute_host_seconds,
            prepare_host_seconds: self.prepare_host_seconds,
            uploads_host_seconds: self.uploads_host_seconds,
        }
    }
}

/// Forward, backward and optimizer update of `BertForMaskedLM`, compiled as one graph; weights
/// and optimizer state stay in the graph between steps.
pub struct TrainingProgram<C: BertConfig> {
    graph: MaskedLmGraph<C>,
    optimizer: Optimizer,
    seed: u64,
    layer_drop: Option<LayerDropSchedule>,
}

impl<C: BertConfig> TrainingProgram<C> {
    /// Builds and compiles the step; parameters (and under token dropping the importance table)
    /// must then be set and the optimizer state reset or loaded. `seed` seeds the dropout masks
    /// and the layer gates; `plan` says what the step drops.
    pub fn compile(
        backend: Backend,
        settings: &BertSettings,
        optimizer: OptimizerSettings,
        seed: u64,
        plan: &DropPlan,
    ) -> Result<Self> {
        let mut graph = MaskedLmGraph::<C>::build(settings, true, plan)?;
        let gradients = graph
            .gradients
            .iter()
            .map(|g| {
                ParameterGradient::new(g.parameter.clone(), g.tensor.typed::<()>(&mut graph.graph))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut optimizer = Optimizer::build(&mut graph.graph, gradients, optimizer)?;
        graph.compile(backend, optimizer.ids_mut())?;
        let state: Vec<luminal::prelude::NodeIndex> =
            optimizer.state_tensors().iter().map(|t| t.input).collect();
        graph.keep_on_device(&state);
        Ok(Self {
            graph,
            optimizer,
            seed,
            layer_drop: plan.layer_drop,
        })
    }

    /// Sets the importance table (token dropping).
    pub fn set_importance(&mut self, table: Vec<f32>) {
        self.graph.set_importance(table);
    }

    /// The importance table after the steps taken (token dropping).
    pub fn importance(&self) -> Option<Vec<f32>> {
        self.graph.importance()
    }

    pub fn parameters(&self) -> &[ParameterRef] {
        &self.graph.parameters
    }

    /// Sets the weights and zeroes the optimizer state (a fresh run).
    pub fn start(&mut self, values: Vec<Vec<f32>>) {
        self.start_at(values, 0);
    }

    /// [`start`](Self::start), with the schedules (learning rate, layer dropping) placed
    /// `steps_taken` steps in: benchmarks measure a step of any point of a run this way.
    pub fn start_at(&mut self, values: Vec<Vec<f32>>, steps_taken: u64) {
        self.graph.set_parameters(values);
        self.optimizer
            .reset_state_at(&mut self.graph.graph, steps_taken);
    }

    /// Sets the weights and the optimizer state of a run that took `steps_taken` steps.
    pub fn resume(
        &mut self,
        values: Vec<Vec<f32>>,
        state: &BTreeMap<String, Vec<f32>>,
        steps_taken: u64,
    ) -> Result<()> {
        self.graph.set_parameters(values);
        self.optimizer
            .load_state(&mut self.graph.graph, state, steps_taken)
    }

    /// Nodes of the compiled step the last step skipped (its gated-off blocks).
    pub fn nodes_skipped(&self) -> usize {
        self.graph.nodes_skipped()
    }

    pub fn steps_taken(&self) -> u64 {
        self.optimizer.steps_taken()
    }

    /// One step on `batch`: [`queue_step`](Self::queue_step), then its results.
    pub fn step(&mut self, batch: &MlmBatch) -> Result<TrainStep> {
        Ok(self.queue_step(batch)?.finish())
    }

    /// Runs one step on `batch` as far as the host must: on the GPU, queues its work and returns
    /// before the device has done it, so that the host can prepare and queue the next step while
    /// the device runs this one. The weights and state are the next step's inputs at once; the
    /// step's results are read by [`QueuedStep::finish`].
    pub fn queue_step(&mut self, batch: &MlmBatch) -> Result<QueuedStep> {
        let preparing = std::time::Instant::now();
        let step = self.optimizer.steps_taken();
        self.graph
            .feed(&batch.tokens, &batch.labels, self.seed, step)?;
        let layers = C::DIMS.num_layers;
        let gates = match &self.layer_drop {
            Some(schedule) => {
                let gates = schedule.sample(self.seed, step, layers);
                self.graph.set_gates(&gates);
                gates
            }
            None => StepGates::all_on(layers),
        };
        self.optimizer.prepare_step(&mut self.graph.graph);
        let prepare_host_seconds = preparing.elapsed().as_secs_f64();
        let executing = std::time::Instant::now();
        self.graph.execute();
        let execute_host_seconds = executing.elapsed().as_secs_f64();
        let uploads_host_seconds = uploads_queued_after(executing);
        if std::env::var_os("DROPBERT_PROFILE").is_some() {
            eprintln!("{}", crate::runtime::profile::report(profile_rows()));
        }
        let losses = self.graph.take_loss_outputs();
        let report = self.optimizer.finish_step(&mut self.graph.graph);
        Ok(QueuedStep {
            losses,
            report,
            predictions: batch.predictions(),
            flops: StepCost::of(&C::DIMS, &StepShape::new(&C::DIMS, &gates.on)).training_flops(),
            gates: gates.on,
            execute_host_seconds,
            prepare_host_seconds,
            uploads_host_seconds,
        })
    }

    /// The current weights, in the order of [`parameters`](Self::parameters).
    pub fn weights(&self) -> Result<Vec<Vec<f32>>> {
        self.graph
            .parameters
            .iter()
            .map(|p| {
                host_values(&self.graph.graph, p.id)
                    .ok_or_else(|| DropbertError::InvalidInput(format!("{} is not set", p.name)))
            })
            .collect()
    }

    /// The optimizer state by name.
    pub fn optimizer_state(&self) -> Result<Vec<(String, Vec<f32>)>> {
        self.optimizer.read_state(&self.graph.graph)
    }
}

/// Rows a profile report lists (`DROPBERT_PROFILE_ROWS`, default 25); its total counts every op.
fn profile_rows() -> usize {
    std::env::var("DROPBERT_PROFILE_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(25)
}

/// Seconds from `start` to the last run's queued uploads, where that run was one started after
/// `start` on the GPU.
fn uploads_queued_after(start: std::time::Instant) -> Option<f64> {
    #[cfg(feature = "cuda")]
    {
        crate::compile::cuda::last_uploads_queued()
            .and_then(|queued| queued.checked_duration_since(start))
            .map(|elapsed| elapsed.as_secs_f64())
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = start;
        None
    }
}
