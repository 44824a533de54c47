use luminal::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Backend, TakenOutput};
use crate::{
    autograd::{add_backward, Gradient, TensorRef},
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
    drop::{DropPlan, GateSchedule, StepGates},
    nn::{
        masked_lm_loss, step_key, BertForMaskedLM, BertInputs, EncoderDrops, LayerGates,
        ParameterRef, Parameters,
    },
    ops::{importance_update, key_values, select_kept_tokens, RandomKey},
    DropbertError, Result,
};

/// Token dropping's inputs and outputs on a training graph.
pub struct TokenDropGraph<C: BertConfig> {
    /// The importance of every vocabulary id: an input that stays in the program, replaced by
    /// `updated_importance` after every step.
    pub importance: GraphTensor<(C::Vocab,)>,
    /// 1 at the batch's predicted positions.
    pub predicted: GraphTensor<(C::Batch, C::Seq)>,
    /// The step's random scores (random and mixed selection).
    pub random: GraphTensor<(C::Batch, C::Seq)>,
    /// Whether the selection reads the random scores: selecting by importance alone does not,
    /// so the host need not draw them (zeros stand in).
    pub draws_scores: bool,
    pub kept_positions: GraphTensor<(C::KeptTokens,)>,
    /// The step's updated table, kept in the program (on the GPU, on the device).
    pub updated_importance: GraphTensor<(C::Vocab,)>,
}

/// The ChaCha stream of token dropping's random scores (layer gates use stream 1; dropout masks
/// are drawn in the graph, by Philox).
const TOKEN_SCORE_STREAM: u64 = 2;

/// `BertForMaskedLM` with its masked-LM loss (and, for training, its backward pass) on one
/// graph, before compilation: what the gradient, training and evaluation programs share.
pub struct MaskedLmGraph<C: BertConfig> {
    // Boxed: graph tensors point at their graph, so it must not move.
    pub graph: Box<Graph>,
    pub inputs: BertInputs<C>,
    /// Flat token indexes of the predicted positions; unused slots point at token 0.
    pub prediction_positions: GraphTensor<(C::Predictions,)>,
    /// The label of each prediction slot; -100 for unused slots.
    pub prediction_labels: GraphTensor<(C::Predictions,)>,
    pub loss: GraphTensor<()>,
    pub token_losses: GraphTensor<(C::Predictions,)>,
    pub token_correct: GraphTensor<(C::Predictions,)>,
    pub parameters: Vec<ParameterRef>,
    /// Empty unless built with the backward pass.
    pub gradients: Vec<Gradient>,
    /// Nodes from this index on are the backward pass and the updates (before compilation).
    pub backward_start: usize,
    /// The input the dropout masks are drawn from, where dropout is on.
    pub dropout_key: Option<GraphTensor<RandomKey>>,
    pub token_drop: Option<TokenDropGraph<C>>,
    pub layer_gates: Option<LayerGates>,
    /// The backend [`compile`](Self::compile) compiled for.
    backend: Backend,
    /// Inputs that stay on the device between executions (see
    /// [`keep_on_device`](Self::keep_on_device)).
    device_inputs: Vec<NodeIndex>,
    /// Built at the first execution of a compiled program where layer dropping is on.
    gate_schedule: Option<GateSchedule>,
    gates_on: Vec<bool>,
    nodes_skipped: usize,
    /// Token dropping's kept positions in the last execution.
    kept_positions: Option<TakenOutput>,
}

impl<C: BertConfig> MaskedLmGraph<C> {
    /// The graph of `C` with the dropping of `plan` ([`DropPlan::none`] for the full model).
    pub fn build(settings: &BertSettings, with_backward: bool, plan: &DropPlan) -> Result<Self> {
        let mut graph = Box::new(Graph::new());
        let inputs = BertInputs::<C>::new(&mut graph);
        let prediction_positions = graph.named_tensor::<(C::Predictions,)>("prediction positions");
        let prediction_labels = graph.named_tensor::<(C::Predictions,)>("prediction labels");
        // This graph's own dropout key and masks, whatever other graph the settings built.
        let dropout = settings.dropout.for_new_graph();
        let settings = &BertSettings {
            dropout: dropout.clone(),
            ..settings.clone()
        };
        let model = BertForMaskedLM::<C>::new(&mut graph, settings);
        let mut token_drop = plan.token_drop.as_ref().map(|(token_drop, special)| {
            let importance = graph.named_tensor::<(C::Vocab,)>("token importance");
            let predicted = graph.named_tensor("predicted positions");
            let random = graph.named_tensor("token scores");
            let rule = token_drop.kept_token_rule(C::DIMS.seq_len, C::DIMS.kept_tokens(), *special);
            let draws_scores = rule.by_importance < rule.kept;
            let kept_positions =
                select_kept_tokens(inputs.input_ids, predicted, importance, random, rule);
            graph.keep_tensors(importance.id);
            (
                importance,
                predicted,
                random,
                kept_positions,
                token_drop.beta,
                draws_scores,
            )
        });
        let layer_gates = plan
            .layer_drop
            .map(|_| LayerGates::new(&mut graph, C::DIMS.num_layers));
        let drops = EncoderDrops {
            kept_positions: token_drop.as_ref().map(|t| t.3),
            layer_gates,
        };
        let objective = masked_lm_loss::<C>(
            model.forward_at(&inputs, prediction_positions, &drops),
            prediction_labels,
        );
        let parameters = model.parameters("");
        for parameter in &parameters {
            graph.keep_tensors(parameter.id);
        }
        let gated = drops
            .layer_gates
            .as_ref()
            .map(LayerGates::regions)
            .unwrap_or_default();
        let backward_start = graph.graph.node_count();
        let gradients = if with_backward {
            add_backward(
                &mut graph,
                TensorRef::of(objective.loss),
                &parameters,
                &gated,
            )?
        } else {
            Vec::new()
        };
        let token_drop = token_drop.take().map(
            |(importance, predicted, random, kept_positions, beta, draws_scores)| TokenDropGraph {
                importance,
                predicted,
                random,
                draws_scores,
                kept_positions: kept_positions.retrieve(),
                // Kept, not retrieved: on the GPU the table stays there from step to step,
                // and the host reads it only when asked.
                updated_importance: importance_update(
                    importance,
                    prediction_labels,
                    objective.token_losses,
                    beta,
                )
                .keep(),
            },
        );
        Ok(Self {
            graph,
            inputs,
            prediction_positions,
            prediction_labels,
            loss: objective.loss.retrieve(),
            token_losses: objective.token_losses.retrieve(),
            token_correct: objective.token_correct.retrieve(),
            parameters,
            gradients,
            backward_start,
            dropout_key: dropout.key(),
            token_drop,
            layer_gates: drops.layer_gates,
            backend: Backend::Cpu,
            device_inputs: Vec::new(),
            gate_schedule: None,
            gates_on: Vec::new(),
            nodes_skipped: 0,
            kept_positions: None,
        })
    }

    /// Compiles the graph for `backend`; `extra` are further node ids the caller keeps using.
    pub fn compile(&mut self, backend: Backend, extra: Vec<&mut NodeIndex>) -> Result<()> {
        // The graph leaves its box only for the call; its address, which every graph tensor
        // holds, does not change.
        let mut graph = std::mem::replace(&mut self.graph, Box::new(Graph::new()));
        let mut ids = self.ids_mut();
        ids.extend(extra);
        let result = backend.compile(&mut graph, ids);
        self.graph = graph;
        self.backend = backend;
        self.gate_schedule = None;
        result
    }

    /// Keeps the weights, token dropping's importance table and `more` (the optimizer's state)
    /// on the device between executions of the compiled program: on the GPU they are uploaded
    /// only where they were set on the host, not through an upload node every step. For
    /// programs that replace them after every execution with values they computed.
    pub fn keep_on_device(&mut self, more: &[NodeIndex]) {
        let mut inputs: Vec<NodeIndex> = self.parameters.iter().map(|p| p.id).collect();
        inputs.extend(self.token_drop.as_ref().map(|t| t.importance.id));
        inputs.extend(more);
        self.backend.keep_inputs_on_device(&mut self.graph, &inputs);
        self.device_inputs = inputs;
        self.gate_schedule = None;
    }

    /// Every node id the programs keep using, for the compiler to remap.
    fn ids_mut(&mut self) -> Vec<&mut NodeIndex> {
        let mut ids: Vec<&mut NodeIndex> = vec![
            &mut self.inputs.input_ids.id,
            &mut self.inputs.token_type_ids.id,
            &mut self.inputs.attention_mask.id,
            &mut self.prediction_positions.id,
            &mut self.prediction_labels.id,
            &mut self.loss.id,
            &mut self.token_losses.id,
            &mut self.token_correct.id,
        ];
        ids.extend(self.parameters.iter_mut().map(|p| &mut p.id));
        for gradient in self.gradients.iter_mut() {
            ids.push(&mut gradient.parameter.id);
            ids.push(&mut gradient.tensor.id);
        }
        ids.extend(self.dropout_key.iter_mut().map(|key| &mut key.id));
        if let Some(token_drop) = &mut self.token_drop {
            ids.extend([
                &mut token_drop.importance.id,
                &mut token_drop.predicted.id,
                &mut token_drop.random.id,
                &mut token_drop.kept_positions.id,
                &mut token_drop.updated_importance.id,
            ]);
        }
        if let Some(gates) = &mut self.layer_gates {
            ids.extend(gates.gates.iter_mut().map(|gate| &mut gate.id));
            ids.extend(gates.scales.iter_mut().map(|scale| &mut scale.id));
        }
        ids
    }

    /// Sets every parameter's values, in the order of `parameters`.
    pub fn set_parameters(&mut self, values: Vec<Vec<f32>>) {
        assert_eq!(values.len(), self.parameters.len());
        for (parameter, values) in self.parameters.iter().zip(values) {
            assert_eq!(values.len(), parameter.numel(), "{}", parameter.name);
            self.graph.set_tensor(parameter.id, 0, Tensor::new(values));
        }
    }

    /// Feeds one batch, its labels (`[batch * seq]`, -100 = not predicted) and the random key
    /// of step `step` under `seed`, from which the graph draws the dropout masks (and the host
    /// token dropping's scores). Fails where the batch predicts more positions than the compiled
    /// capacity, `batch * ceil(0.15 * seq)`.
    pub fn feed(&mut self, batch: &TokenBatch, labels: &[i64], seed: u64, step: u64) -> Result<()> {
        assert_eq!(labels.len(), C::DIMS.batch_size * C::DIMS.seq_len);
        let capacity = C::DIMS.max_predictions();
        let predicted: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] != -100).collect();
        if predicted.len() > capacity {
            return Err(DropbertError::InvalidInput(format!(
                "the batch predicts {} positions; {} is compiled for at most {capacity} (batch {} x ceil(0.15 x seq {}))",
                predicted.len(),
                C::NAME,
                C::DIMS.batch_size,
                C::DIMS.seq_len
            )));
        }
        let mut positions = vec![0f32; capacity];
        let mut slot_labels = vec![-100f32; capacity];
        for (slot, &position) in predicted.iter().enumerate() {
            positions[slot] = position as f32;
            slot_labels[slot] = labels[position] as f32;
        }
        self.inputs.feed(&mut self.graph, batch);
        self.graph
            .set_tensor(self.prediction_positions.id, 0, Tensor::new(positions));
        self.graph
            .set_tensor(self.prediction_labels.id, 0, Tensor::new(slot_labels));
        let key = step_key(seed, step);
        if let Some(key_input) = self.dropout_key {
            self.graph
                .set_tensor(key_input.id, 0, Tensor::new(key_values(key)));
        }
        if let Some(token_drop) = &self.token_drop {
            let predicted: Vec<f32> = labels.iter().map(|&l| (l != -100) as u8 as f32).collect();
            // Drawn before every step while the device waits: skipped where unread.
            let random: Vec<f32> = if token_drop.draws_scores {
                let mut rng = ChaCha8Rng::seed_from_u64(key);
                rng.set_stream(TOKEN_SCORE_STREAM);
                (0..labels.len()).map(|_| rng.gen::<f32>()).collect()
            } else {
                vec![0.0; labels.len()]
            };
            self.graph
                .set_tensor(token_drop.predicted.id, 0, Tensor::new(predicted));
            self.graph
                .set_tensor(token_drop.random.id, 0, Tensor::new(random));
        }
        Ok(())
    }

    /// Sets the importance table (token dropping).
    pub fn set_importance(&mut self, table: Vec<f32>) {
        let token_drop = self.token_drop.as_ref().expect("token dropping is on");
        assert_eq!(table.len(), C::DIMS.vocab_size);
        self.graph
            .set_tensor(token_drop.importance.id, 0, Tensor::new(table));
    }

    /// The importance table the next step selects with.
    pub fn importance(&self) -> Option<Vec<f32>> {
        let token_drop = self.token_drop.as_ref()?;
        super::host_values(&self.graph, token_drop.importance.id)
    }

    /// The gate inputs, block by block (layer dropping).
    pub fn gate_ids(&self) -> Vec<NodeIndex> {
        self.layer_gates
            .iter()
            .flat_map(|gates| gates.gates.iter().map(|gate| gate.id))
            .collect()
    }

    /// Sets the layer gates of the next step (layer dropping).
    pub fn set_gates(&mut self, gates: &StepGates) {
        let layer_gates = self.layer_gates.as_ref().expect("layer dropping is on");
        assert_eq!(gates.on.len(), C::DIMS.num_layers);
        for (layer, (&on, &scale)) in gates.on.iter().zip(&gates.scales).enumerate() {
            let gate = Tensor::new(vec![on as u8 as f32]);
            self.graph.set_tensor(layer_gates.gates[layer].id, 0, gate);
            self.graph
                .set_tensor(layer_gates.scales[layer].id, 0, Tensor::new(vec![scale]));
        }
        self.gates_on = gates.on.clone();
    }

    /// Runs the program once on what was fed, skipping the blocks gated off; under token
    /// dropping, the updated importance table replaces the table.
    pub fn execute(&mut self) {
        self.backend
            .upload_host_values(&mut self.graph, &self.device_inputs);
        if self.layer_gates.is_some() && self.gate_schedule.is_none() {
            let gates = self.gate_ids();
            self.gate_schedule = Some(GateSchedule::new(&mut self.graph, gates));
        }
        match &mut self.gate_schedule {
            Some(schedule) => {
                assert_eq!(
                    self.gates_on.len(),
                    C::DIMS.num_layers,
                    "set the layer gates before running a layer-dropping program"
                );
                self.nodes_skipped = schedule.execute(&mut self.graph, &self.gates_on);
            }
            None => self.graph.execute(),
        }
        if let Some(token_drop) = &self.token_drop {
            let updated = self
                .graph
                .tensors
                .remove(&(token_drop.updated_importance.id, 0))
                .expect("the updated importance table is an output");
            self.graph.set_tensor(token_drop.importance.id, 0, updated);
            // Taken, not read: reading waits for the step to end on the device.
            self.kept_positions = TakenOutput::take(&mut self.graph, token_drop.kept_positions);
        }
    }

    /// Nodes of the program the last execution skipped (gated-off blocks).
    pub fn nodes_skipped(&self) -> usize {
        self.nodes_skipped
    }

    /// The kept positions of the last execution, `[batch * kept]` flat token indexes (empty
    /// without token dropping).
    pub fn kept_positions(&self) -> Vec<usize> {
        self.kept_positions
            .as_ref()
            .map(|positions| positions.values().into_iter().map(|p| p as usize).collect())
            .unwrap_or_default()
    }

    /// Takes the loss outputs of the last execution out of the program, to be read when needed.
    pub fn take_loss_outputs(&mut self) -> TakenLossOutputs {
        let graph = &mut self.graph;
        let missing = "the execution computed the loss outputs";
        TakenLossOutputs {
            loss: TakenOutput::take(graph, self.loss).expect(missing),
            token_losses: TakenOutput::take(graph, self.token_losses).expect(missing),
            token_correct: TakenOutput::take(graph, self.token_correct).expect(missing),
        }
    }
}

/// The loss outputs of one execution, taken out of the program (see [`TakenOutput`]).
#[derive(Debug)]
pub struct TakenLossOutputs {
    loss: TakenOutput,
    token_losses: TakenOutput,
    token_correct: TakenOutput,
}

impl TakenLossOutputs {
    /// Their values: waits for the execution to end, where it runs on a device.
    pub fn read(&self) -> LossOutputs {
        LossOutputs {
            loss: self.loss.values()[0],
            token_losses: self.token_losses.values(),
            token_correct: self.token_correct.values(),
        }
    }
}

/// The loss outputs of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutputs {
    pub loss: f32,
    pub token_losses: Vec<f32>,
    pub token_correct: Vec<f32>,
}
