use std::collections::HashSet;

use serde::Serialize;

use super::{
    counted_matmul_flops, saved_activation_bytes, DropPlan, LayerDropSchedule, StepCost, StepShape,
    TokenDropSettings,
};
use crate::{
    config::{BertConfig, BertSettings},
    data::tokenizer::SpecialTokenIds,
    runtime::MaskedLmGraph,
    Result,
};

/// The cost of one training step of a configuration: what `<binary> info` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub configuration: &'static str,
    pub parameters: usize,
    /// Matmul FLOPs of a step with every block run (token dropping applied), by [`StepCost`].
    pub flops_per_step: f64,
    /// The same, counted off the step's graph.
    pub flops_per_step_counted: f64,
    /// A step of the same dimensions without any dropping.
    pub flops_per_step_full: f64,
    /// `flops_per_step_full / flops_per_step`.
    pub flop_ratio: f64,
    /// Layer dropping: expected FLOPs of a step once the keep schedule has reached `theta_bar`.
    pub expected_flops_at_theta_bar: Option<f64>,
    /// float32 bytes of the forward values the backward pass reads, with every block run.
    pub activation_bytes: usize,
}

impl CostReport {
    pub fn of<C: BertConfig>(parameters: usize) -> Result<Self> {
        let dims = C::DIMS;
        let all_on = vec![true; dims.num_layers];
        let analytic = StepCost::of(&dims, &StepShape::new(&dims, &all_on)).training_flops();
        let full = StepCost::of(&dims, &StepShape::full(&dims)).training_flops();
        let plan = DropPlan::for_training::<C>(
            dims.token_drop.map(|_| TokenDropSettings::default()),
            dims.layer_drop.map(LayerDropSchedule::from),
            // Special ids only steer which tokens are kept, not what a step costs.
            SpecialTokenIds::for_random_ids(dims.vocab_size),
        )?;
        let graph = MaskedLmGraph::<C>::build(&BertSettings::default(), true, &plan)?;
        let counted = counted_matmul_flops(&graph.graph, &HashSet::new());
        let expected_flops_at_theta_bar = plan.layer_drop.map(|schedule| {
            let keep = schedule.keep_probabilities(u64::MAX, dims.num_layers);
            StepCost::expected(&dims, &keep).training_flops()
        });
        Ok(Self {
            configuration: C::NAME,
            parameters,
            flops_per_step: analytic,
            flops_per_step_counted: counted,
            flops_per_step_full: full,
            flop_ratio: full / analytic,
            expected_flops_at_theta_bar,
            activation_bytes: saved_activation_bytes(&graph.graph, graph.backward_start),
        })
    }
}
