use std::collections::BTreeMap;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;

/// The running-average rule of token dropping: for every vocabulary id `t` predicted in the step,
/// `table[t] = beta * table[t] + (1 - beta) * mean(losses of t's predictions)`; other ids keep
/// their value. `labels` holds one id per prediction slot, negative (-100) for unused slots.
pub fn update_importance(table: &mut [f32], labels: &[f32], losses: &[f32], beta: f32) {
    let mut per_id: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    for (&label, &loss) in labels.iter().zip(losses) {
        if label < 0.0 {
            continue;
        }
        let entry = per_id.entry(label as usize).or_insert((0.0, 0));
        entry.0 += loss as f64;
        entry.1 += 1;
    }
    for (id, (sum, count)) in per_id {
        let mean = (sum / count as f64) as f32;
        table[id] = beta * table[id] + (1.0 - beta) * mean;
    }
}

/// [`update_importance`] as a graph op: inputs `table [vocab]`, `labels [predictions]`,
/// `losses [predictions]`; output the updated table. The table stays in the program between
/// steps, like the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportanceUpdate {
    pub beta: f32,
}

impl Operator for ImportanceUpdate {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let mut table = input_values(&inputs[0].0, &inputs[0].1).into_owned();
        let labels = input_values(&inputs[1].0, &inputs[1].1);
        let losses = input_values(&inputs[2].0, &inputs[2].1);
        update_importance(&mut table, &labels, &losses, self.beta);
        vec![Tensor::new(table)]
    }
}

/// The table after one step's update, as a graph tensor.
pub fn importance_update<V: Dimension, P: Dimension>(
    table: GraphTensor<(V,)>,
    labels: GraphTensor<(P,)>,
    losses: GraphTensor<(P,)>,
    beta: f32,
) -> GraphTensor<(V,)> {
    let id = table
        .graph()
        .add_op(ImportanceUpdate { beta })
        .input(table.id, 0, table.shape)
        .input(labels.id, 0, labels.shape)
        .input(losses.id, 0, losses.shape)
        .finish();
    GraphTensor::from_id(id, ShapeTracker::new(&[V::const_size()]), table.graph_ref)
}
