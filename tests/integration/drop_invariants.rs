//! Property tests of the invariants of token dropping and progressive layer dropping (CPU).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::common::{fixture, ids, read_fixture, BothPreLn, SPECIAL};
use dropbert::{
    config::{BertConfig, BertSettings},
    data::{batch::TokenBatch, tokenizer::SpecialTokenIds},
    drop::{
        counted_matmul_flops, DropPlan, GateSchedule, LayerDropSchedule, Selection, StepCost,
        StepGates, StepShape, TokenDropSettings,
    },
    hf::{load_weights, read_tensor_file, write_tensor_file, HfBertConfig, MissingPolicy},
    nn::{attention_mask_bias, BertInputs, BertModel, EncoderDrops, LayerGates, Parameters},
    ops::{gather_rows, replace_rows, update_importance, KeptTokenRule, SequenceTokens},
    runtime::{Backend, GradientProgram, MaskedLmGraph, StepOutputs},
};
use luminal::prelude::*;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Choosing the kept tokens.

#[derive(Debug, Clone)]
struct Sequence {
    ids: Vec<f32>,
    predicted: Vec<f32>,
    random: Vec<f32>,
    importance: Vec<f32>,
    kept: usize,
    by_importance: usize,
}

const VOCAB: usize = 12;

fn sequences() -> impl Strategy<Value = Sequence> {
    (1usize..40).prop_flat_map(|seq| {
        (
            prop::collection::vec(0u32..VOCAB as u32, seq),
            prop::collection::vec(prop::bool::weighted(0.2), seq),
            prop::collection::vec(0.0f32..1.0, seq),
            // Few distinct values, so that ties are common.
            prop::collection::vec((0u8..4).prop_map(|v| v as f32), VOCAB),
            1..=seq,
            0.0f64..=1.0,
        )
            .prop_map(|(ids, predicted, random, importance, kept, share)| {
                let predicted = ids
                    .iter()
                    .zip(predicted)
                    .map(|(&id, p)| (p && id > SPECIAL.mask) as u8 as f32)
                    .collect();
                Sequence {
                    ids: ids.iter().map(|&id| id as f32).collect(),
                    predicted,
                    random,
                    importance,
                    kept,
                    by_importance: (share * kept as f64).round() as usize,
                }
            })
    })
}

fn choose(sequence: &Sequence) -> (KeptTokenRule, Vec<usize>) {
    let rule = KeptTokenRule {
        seq: sequence.ids.len(),
        kept: sequence.kept,
        by_importance: sequence.by_importance,
        allow: vec![SPECIAL.unk, SPECIAL.cls, SPECIAL.sep, SPECIAL.mask],
        deny: vec![SPECIAL.pad],
    };
    let tokens = SequenceTokens {
        ids: &sequence.ids,
        predicted: &sequence.predicted,
        random: &sequence.random,
    };
    let kept = rule.kept_positions(&tokens, &sequence.importance);
    (rule, kept)
}

proptest! {
    #[test]
    fn exactly_k_distinct_positions_are_kept_in_order(sequence in sequences()) {
        let (_, kept) = choose(&sequence);
        prop_assert_eq!(kept.len(), sequence.kept);
        prop_assert!(kept.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(kept.iter().all(|&j| j < sequence.ids.len()));
    }

    #[test]
    fn allow_list_first_pad_last_and_predicted_kept_while_they_fit(sequence in sequences()) {
        let (rule, kept) = choose(&sequence);
        let kept: HashSet<usize> = kept.into_iter().collect();
        let seq = sequence.ids.len();
        let is_allowed = |j: usize| rule.allow.contains(&(sequence.ids[j] as u32));
        let is_pad = |j: usize| rule.deny.contains(&(sequence.ids[j] as u32));
        let allowed = (0..seq).filter(|&j| is_allowed(j)).count();
        let predicted = (0..seq).filter(|&j| !is_allowed(j) && sequence.predicted[j] != 0.0).count();
        let kept_allowed = kept.iter().filter(|&&j| is_allowed(j)).count();
        prop_assert_eq!(kept_allowed, allowed.min(sequence.kept), "allow-list ids come first");
        if kept.iter().any(|&j| is_pad(j)) {
            prop_assert!((0..seq).filter(|&j| !is_pad(j)).all(|j| kept.contains(&j)), "[PAD] goes first");
        }
        if allowed + predicted <= sequence.kept {
            prop_assert!((0..seq)
                .filter(|&j| sequence.predicted[j] != 0.0)
                .all(|j| kept.contains(&j)), "predicted positions are kept while they fit");
        }
    }

    /// Why a program selecting by importance alone need not draw the step's random scores.
    #[test]
    fn importance_selection_does_not_read_the_random_scores(mut sequence in sequences()) {
        sequence.by_importance = sequence.kept;
        let (_, with_scores) = choose(&sequence);
        sequence.random.iter_mut().for_each(|score| *score = 0.0);
        let (_, without) = choose(&sequence);
        prop_assert_eq!(with_scores, without);
    }

    #[test]
    fn importance_selection_is_a_stable_top_k(mut sequence in sequences()) {
        sequence.by_importance = sequence.kept;
        let (rule, kept) = choose(&sequence);
        let kept: HashSet<usize> = kept.into_iter().collect();
        let seq = sequence.ids.len();
        let tier = |j: usize| {
            let id = sequence.ids[j] as u32;
            if rule.allow.contains(&id) { 0 }
            else if sequence.predicted[j] != 0.0 { 1 }
            else if rule.deny.contains(&id) { 3 }
            else { 2 }
        };
        let score = |j: usize| sequence.importance[sequence.ids[j] as usize];
        for a in kept.iter().copied() {
            for b in (0..seq).filter(|b| !kept.contains(b)) {
                let before = tier(a) < tier(b)
                    || (tier(a) == tier(b) && (score(a) > score(b) || (score(a) == score(b) && a < b)));
                prop_assert!(before, "kept {a} ranks after dropped {b}");
            }
        }
    }

    #[test]
    fn the_importance_table_changes_only_at_predicted_ids_by_the_rule(
        table in prop::collection::vec(-5.0f32..20.0, 30),
        predictions in prop::collection::vec((prop::option::weighted(0.7, 0usize..30), 0.0f32..12.0), 1..25),
        beta in 0.5f32..0.999,
    ) {
        let labels: Vec<f32> = predictions.iter().map(|(l, _)| l.map_or(-100.0, |l| l as f32)).collect();
        let losses: Vec<f32> = predictions.iter().map(|(_, loss)| *loss).collect();
        let mut updated = table.clone();
        update_importance(&mut updated, &labels, &losses, beta);
        let mut per_id: HashMap<usize, Vec<f32>> = HashMap::new();
        for (label, loss) in predictions.iter().filter_map(|(l, loss)| l.map(|l| (l, *loss))) {
            per_id.entry(label).or_default().push(loss);
        }
        for id in 0..table.len() {
            match per_id.get(&id) {
                None => prop_assert_eq!(updated[id], table[id]),
                Some(losses) => {
                    let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64;
                    let expected = beta as f64 * table[id] as f64 + (1.0 - beta as f64) * mean;
                    prop_assert!((updated[id] as f64 - expected).abs() <= 1e-5 * expected.abs().max(1.0));
                }
            }
        }
    }
}

#[test]
fn random_selection_depends_on_the_scores_only_below_the_special_tiers() {
    let sequence = Sequence {
        ids: vec![2.0, 7.0, 8.0, 9.0, 10.0, 3.0],
        predicted: vec![0.0; 6],
        random: vec![0.0, 0.1, 0.9, 0.5, 0.3, 0.0],
        importance: (0..VOCAB).map(|id| id as f32).collect(),
        kept: 4,
        by_importance: 0,
    };
    let (_, kept) = choose(&sequence);
    assert_eq!(kept, vec![0, 2, 3, 5]);
    let settings = TokenDropSettings {
        selection: Selection::Mixed,
        random_fraction: 0.25,
        ..TokenDropSettings::default()
    };
    assert_eq!(settings.kept_token_rule(6, 4, SPECIAL).by_importance, 3);
}

// ---------------------------------------------------------------------------------------------
// The layer-drop schedule.

proptest! {
    #[test]
    fn theta_starts_at_one_and_falls_monotonically_to_theta_bar(
        theta_bar in 0.05f32..=1.0,
        gamma in 1e-4f32..0.1,
    ) {
        let schedule = LayerDropSchedule { theta_bar, gamma };
        prop_assert_eq!(schedule.theta(0), 1.0);
        let steps: Vec<u64> = (0..200).map(|i| i * (1 + (1.0 / gamma) as u64) / 10).collect();
        let thetas: Vec<f64> = steps.iter().map(|&t| schedule.theta(t)).collect();
        prop_assert!(thetas.windows(2).all(|w| w[1] <= w[0]));
        prop_assert!(thetas.iter().all(|&t| t >= theta_bar as f64 - 1e-12));
        prop_assert!((thetas.last().unwrap() - theta_bar as f64).abs() < 1e-6);
    }

    #[test]
    fn keep_probabilities_fall_with_depth(
        theta_bar in 0.05f32..=1.0,
        gamma in 1e-4f32..0.1,
        step in 0u64..100_000,
        layers in 1usize..25,
    ) {
        let schedule = LayerDropSchedule { theta_bar, gamma };
        let keep = schedule.keep_probabilities(step, layers);
        prop_assert!(keep.windows(2).all(|w| w[1] <= w[0]));
        prop_assert!(keep.iter().all(|&p| p > 0.0 && p <= 1.0));
        let last = keep[layers - 1];
        prop_assert!((last - schedule.theta(step)).abs() < 1e-12);
    }
}

#[test]
fn observed_keep_frequencies_match_the_probabilities() {
    let schedule = LayerDropSchedule {
        theta_bar: 0.4,
        gamma: 0.05,
    };
    let (layers, first, steps) = (6, 1_000u64, 20_000u64);
    let mut kept = vec![0usize; layers];
    for step in first..first + steps {
        for (count, on) in kept.iter_mut().zip(schedule.sample(11, step, layers).on) {
            *count += on as usize;
        }
    }
    for (layer, (&count, p)) in kept
        .iter()
        .zip(schedule.keep_probabilities(first, layers))
        .enumerate()
    {
        let frequency = count as f64 / steps as f64;
        let sigma = (p * (1.0 - p) / steps as f64).sqrt();
        assert!(
            (frequency - p).abs() < 4.0 * sigma + 1e-9,
            "layer {layer}: kept {frequency}, probability {p}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The ops: gather then replace is the identity.

proptest! {
    #[test]
    fn gather_then_replace_rows_is_the_identity(
        values in prop::collection::vec(-10.0f32..10.0, 6 * 5),
        chosen in prop::sample::subsequence((0usize..6).collect::<Vec<_>>(), 3),
    ) {
        let mut cx = Graph::new();
        let table = cx.tensor::<R2<6, 5>>().set(values.clone());
        let positions = cx.tensor::<R1<3>>().set(chosen.iter().map(|&p| p as f32).collect::<Vec<_>>());
        let rows = gather_rows(table, positions);
        let back = replace_rows(table, rows, positions).retrieve();
        cx.execute();
        prop_assert_eq!(back.data(), values);
    }
}

// ---------------------------------------------------------------------------------------------
// Whole models, on the reference fixtures' checkpoints.

dropbert::bert_config! {
    pub PostLn4 {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub PostLn4KeepAll {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: { layer: 1, kept: 16 }, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub PreLn4 {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub PreLn3 {
        vocab: 512, hidden: 32, layers: 3, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub PreLn4LayerDrop {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

fn fixture_batch(case: &str) -> (TokenBatch, Vec<i64>) {
    let batch = read_fixture(&format!("drops/{case}/batch.safetensors"));
    let tokens = TokenBatch {
        input_ids: ids(&batch["input_ids"]),
        token_type_ids: ids(&batch["token_type_ids"]),
        attention_mask: ids(&batch["attention_mask"]),
        rows: 4,
    };
    let labels = batch["labels"].to_f32().iter().map(|&l| l as i64).collect();
    (tokens, labels)
}

fn plan_for<C: BertConfig>() -> DropPlan {
    DropPlan::for_training::<C>(
        C::DIMS.token_drop.map(|_| TokenDropSettings::default()),
        C::DIMS.layer_drop.map(LayerDropSchedule::from),
        SpecialTokenIds::BERT_UNCASED,
    )
    .unwrap()
}

/// Loss and gradients of `C` on a checkpoint and a fixture batch, with `gates` if given.
fn step<C: BertConfig>(
    checkpoint: &std::path::Path,
    case: &str,
    gates: Option<StepGates>,
) -> StepOutputs {
    let plan = plan_for::<C>();
    let (mut program, _) = GradientProgram::<C>::from_checkpoint(
        checkpoint,
        Backend::Cpu,
        MissingPolicy::Refuse,
        &plan,
    )
    .unwrap();
    if let Some((settings, special)) = &plan.token_drop {
        program.set_importance(settings.initial_table(C::DIMS.vocab_size, *special));
    }
    if let Some(gates) = gates {
        program.set_gates(&gates);
    }
    let (batch, labels) = fixture_batch(case);
    program.run(&batch, &labels).unwrap()
}

fn checkpoint(case: &str) -> std::path::PathBuf {
    fixture(&format!("drops/{case}/checkpoint"))
}

#[test]
fn keeping_every_token_gives_exactly_the_baseline() {
    let case = "token_drop_post_ln";
    let baseline = step::<PostLn4>(&checkpoint(case), case, None);
    let all_kept = step::<PostLn4KeepAll>(&checkpoint(case), case, None);
    assert_eq!(all_kept.loss, baseline.loss);
    assert_eq!(all_kept.gradients, baseline.gradients);
}

#[test]
fn all_gates_on_gives_exactly_the_pre_ln_baseline() {
    let case = "layer_drop_pre_ln";
    let baseline = step::<PreLn4>(&checkpoint(case), case, None);
    let schedule = LayerDropSchedule::from(PreLn4LayerDrop::DIMS.layer_drop.unwrap());
    let gated = step::<PreLn4LayerDrop>(
        &checkpoint(case),
        case,
        Some(schedule.fixed_gates(0, vec![true; 4])),
    );
    assert_eq!(gated.loss, baseline.loss);
    assert_eq!(gated.gradients, baseline.gradients);
}

/// Block 1 gated off (at step 0, where no block is scaled) is the 3-block model of blocks 0, 2
/// and 3; the skipped block's parameters get zero gradients.
#[test]
fn a_gated_off_block_is_the_identity() {
    let case = "layer_drop_pre_ln";
    let source = checkpoint(case);
    let three = std::env::temp_dir().join(format!("dropbert-three-blocks-{}", std::process::id()));
    std::fs::create_dir_all(&three).unwrap();
    let mut config = HfBertConfig::read(&source.join("config.json")).unwrap();
    config.num_hidden_layers = 3;
    std::fs::write(
        three.join("config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    let rename = |name: &str| -> Option<String> {
        for (from, to) in [(0, 0), (2, 1), (3, 2)] {
            if let Some(rest) = name.strip_prefix(&format!("bert.encoder.layer.{from}.")) {
                return Some(format!("bert.encoder.layer.{to}.{rest}"));
            }
        }
        (!name.starts_with("bert.encoder.layer.1.")).then(|| name.to_string())
    };
    let weights: BTreeMap<_, _> = read_tensor_file(&source.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .filter_map(|(name, tensor)| rename(&name).map(|name| (name, tensor)))
        .collect();
    write_tensor_file(&three.join("model.safetensors"), &weights).unwrap();

    let reference = step::<PreLn3>(&three, case, None);
    let schedule = LayerDropSchedule::from(PreLn4LayerDrop::DIMS.layer_drop.unwrap());
    let gated = step::<PreLn4LayerDrop>(
        &source,
        case,
        Some(schedule.fixed_gates(0, vec![true, false, true, true])),
    );
    std::fs::remove_dir_all(&three).unwrap();
    assert_eq!(gated.loss, reference.loss);
    let program =
        MaskedLmGraph::<PreLn4LayerDrop>::build(&BertSettings::default(), false, &DropPlan::none())
            .unwrap();
    let reference_names =
        MaskedLmGraph::<PreLn3>::build(&BertSettings::default(), false, &DropPlan::none())
            .unwrap()
            .parameters;
    let reference_gradients: HashMap<String, &Vec<f32>> = reference_names
        .iter()
        .map(|p| p.name.clone())
        .zip(&reference.gradients)
        .collect();
    for (parameter, gradient) in program.parameters.iter().zip(&gated.gradients) {
        if parameter.name.starts_with("bert.encoder.layer.1.") {
            assert!(gradient.iter().all(|&g| g == 0.0), "{}", parameter.name);
            continue;
        }
        let name = rename(&parameter.name).unwrap();
        assert_eq!(gradient, reference_gradients[&name], "{}", parameter.name);
    }
}

/// Runs embeddings and the encoder of `BothPreLn` with the gates `on` and the kept positions
/// `kept`, returning the encoder output.
fn encoder_output(on: [bool; 4], kept: &[usize]) -> Vec<f32> {
    let case = "both_pre_ln";
    let mut cx = Box::new(Graph::new());
    let inputs = BertInputs::<BothPreLn>::new(&mut cx);
    let settings = BertSettings::default();
    let model = BertModel::<BothPreLn>::new(&mut cx, &settings, false);
    let kept_positions = cx.named_tensor("kept positions");
    let gates = LayerGates::new(&mut cx, 4);
    for (layer, &on) in on.iter().enumerate() {
        gates.gates[layer].set(vec![on as u8 as f32]);
        gates.scales[layer].set(vec![1.0]);
    }
    let drops = EncoderDrops {
        kept_positions: Some(kept_positions),
        layer_gates: Some(gates),
    };
    let embedded = model
        .embeddings
        .forward(inputs.input_ids, inputs.token_type_ids);
    let output = model
        .encoder
        .forward_dropping(embedded, attention_mask_bias(inputs.attention_mask), &drops)
        .retrieve();
    let parameters = model.parameters("bert.");
    let (weights, _) = load_weights(
        &checkpoint(case),
        &parameters,
        &settings,
        MissingPolicy::Refuse,
    )
    .unwrap();
    for (parameter, values) in parameters.iter().zip(weights) {
        cx.set_tensor(parameter.id, 0, Tensor::new(values));
    }
    kept_positions.set(kept.iter().map(|&p| p as f32).collect::<Vec<_>>());
    inputs.feed(&mut cx, &fixture_batch(case).0);
    cx.execute();
    output.data()
}

/// Dropped tokens reach the last layer with the hidden state they had at the split: with the
/// last block gated off, their output rows equal those of a run where every block from the split
/// on is gated off. The output is full length.
#[test]
fn dropped_tokens_carry_their_state_from_the_split() {
    let (seq, hidden) = (16, 32);
    let kept: Vec<usize> = (0..4)
        .flat_map(|row| [0, 2, 3, 5, 8, 9, 12, 15].map(|j| row * seq + j))
        .collect();
    let through_middle = encoder_output([true, true, true, false], &kept);
    let at_split = encoder_output([true, false, false, false], &kept);
    assert_eq!(through_middle.len(), 4 * seq * hidden, "full length");
    let kept: HashSet<usize> = kept.into_iter().collect();
    for token in 0..4 * seq {
        let rows = |v: &Vec<f32>| v[token * hidden..(token + 1) * hidden].to_vec();
        if kept.contains(&token) {
            assert_ne!(rows(&through_middle), rows(&at_split), "kept token {token}");
        } else {
            assert_eq!(
                rows(&through_middle),
                rows(&at_split),
                "dropped token {token}"
            );
        }
    }
}

/// A gated-off block costs no compute: the nodes the program skips hold exactly the block's
/// matmuls, forward and backward, as the cost model counts them.
#[test]
fn skipped_blocks_are_not_computed() {
    let plan = plan_for::<BothPreLn>();
    let mut graph =
        MaskedLmGraph::<BothPreLn>::build(&BertSettings::default(), true, &plan).unwrap();
    for gradient in &graph.gradients {
        graph.graph.keep_tensors(gradient.tensor.id);
    }
    let gates = graph.gate_ids();
    let mut schedule = GateSchedule::new(&mut graph.graph, gates);
    let dead_code = schedule.skipped_nodes(&graph.graph, &[true; 4]).len();
    for on in [
        [true; 4],
        [true, false, true, true],
        [false, true, false, true],
        [true, true, true, false],
        [false; 4],
    ] {
        let skipped: HashSet<NodeIndex> = schedule
            .skipped_nodes(&graph.graph, &on)
            .iter()
            .copied()
            .collect();
        let counted = counted_matmul_flops(&graph.graph, &skipped);
        let analytic =
            StepCost::of(&BothPreLn::DIMS, &StepShape::new(&BothPreLn::DIMS, &on)).training_flops();
        assert_eq!(counted, analytic, "gates {on:?}");
        assert_eq!(skipped.len() > dead_code, on.iter().any(|&on| !on));
    }
}

/// The GPU build orders its downloads after every kernel through schedule dependencies
/// (`compile::cuda::host_transfers`). They order nodes and carry no values, so a node that
/// follows every other one by schedule alone does not make a gated-off block needed.
#[test]
fn schedule_dependencies_do_not_make_a_gated_off_block_needed() {
    let plan = plan_for::<BothPreLn>();
    let mut graph =
        MaskedLmGraph::<BothPreLn>::build(&BertSettings::default(), true, &plan).unwrap();
    let gates = graph.gate_ids();
    let on = [true, false, true, true];
    let skipped = |graph: &mut Graph| -> HashSet<NodeIndex> {
        GateSchedule::new(graph, gates.clone())
            .skipped_nodes(graph, &on)
            .iter()
            .copied()
            .collect()
    };
    let before = skipped(&mut graph.graph);
    let nodes: Vec<NodeIndex> = graph.graph.graph.node_indices().collect();
    let last = graph.graph.add_op(luminal::op::Contiguous).finish();
    for node in nodes {
        graph.graph.add_schedule_dependency(node, last);
    }
    graph.graph.no_delete.insert(last);
    let after = skipped(&mut graph.graph);
    assert!(!before.is_empty());
    assert_eq!(after, before);
}

/// A node that only orders others (as the CUDA program's transfer barriers do: schedule
/// dependencies, no value) runs whatever the gates, even after a gated-off block's nodes: it
/// computes nothing a gate could spare, and bench's upload time is noted when one runs.
#[test]
fn a_node_that_only_orders_others_is_never_skipped() {
    let plan = plan_for::<BothPreLn>();
    let mut graph =
        MaskedLmGraph::<BothPreLn>::build(&BertSettings::default(), true, &plan).unwrap();
    let gates = graph.gate_ids();
    let on = [true, false, true, true];
    let nodes: Vec<NodeIndex> = graph.graph.graph.node_indices().collect();
    let barrier = graph.graph.add_op(luminal::op::Contiguous).finish();
    for node in nodes {
        graph.graph.add_schedule_dependency(node, barrier);
    }
    let mut schedule = GateSchedule::new(&mut graph.graph, gates);
    let skipped: HashSet<NodeIndex> = schedule
        .skipped_nodes(&graph.graph, &on)
        .iter()
        .copied()
        .collect();
    assert!(!skipped.is_empty(), "the gated-off block is skipped");
    assert!(!skipped.contains(&barrier));
}

/// The gradient of a switchable block's input is its gate's choice between the block's own
/// gradient and the skip path's: one `GateChoose` a block in the backward pass, as in the
/// forward. The only `GateMask`s left stand for parameters read inside a block alone (their
/// gradient is zero while it is skipped). No hidden-state gradient is masked to a buffer of zeros
/// and then added.
#[test]
fn a_blocks_input_gradient_is_chosen_by_its_gate_not_summed_with_zeros() {
    let plan = plan_for::<BothPreLn>();
    let graph = MaskedLmGraph::<BothPreLn>::build(&BertSettings::default(), true, &plan).unwrap();
    let blocks = graph.gate_ids().len();
    let ops = |kind: fn(&dyn std::any::Any) -> bool| {
        graph
            .graph
            .graph
            .node_weights()
            .filter(|op| kind(op.as_any()))
            .count()
    };
    let choices = ops(|op| op.is::<dropbert::ops::GateChoose>());
    assert_eq!(choices, 2 * blocks);
    let parameter_sizes: HashSet<usize> = graph
        .parameters
        .iter()
        .map(|parameter| parameter.shape.iter().product())
        .collect();
    for op in graph.graph.graph.node_weights() {
        if let Some(mask) = op.as_any().downcast_ref::<dropbert::ops::GateMask>() {
            assert!(mask.pass_when, "a skip path is masked");
            assert!(
                parameter_sizes.contains(&mask.len),
                "a mask of {} values is no parameter's gradient",
                mask.len
            );
        }
    }
}

/// `info`'s analytic FLOPs equal the count taken off the compiled configuration's graph.
#[test]
fn the_cost_model_agrees_with_the_graph() {
    for report in [
        dropbert::drop::CostReport::of::<PostLn4KeepAll>(0).unwrap(),
        dropbert::drop::CostReport::of::<BothPreLn>(0).unwrap(),
    ] {
        assert_eq!(
            report.flops_per_step, report.flops_per_step_counted,
            "{}",
            report.configuration
        );
        assert!(report.activation_bytes > 0);
    }
}

/// `bench` runs full training steps with both drops, queued ahead (the default) and one at a
/// time.
#[test]
fn bench_runs_with_both_drops() {
    dropbert::cli::run::<BothPreLn>(["bert", "bench", "--warmup", "1", "--steps", "2", "--json"])
        .unwrap();
    dropbert::cli::run::<BothPreLn>([
        "bert",
        "bench",
        "--warmup",
        "1",
        "--steps",
        "2",
        "--one-at-a-time",
    ])
    .unwrap();
}

/// A gated-off block is skipped whatever wraps the gate ops: here the profiler's timing
/// wrappers, as on the GPU the CUDA kernels replacing them (both answer `GATED_INPUTS`).
#[test]
fn wrapped_gate_ops_still_skip_their_blocks() {
    let plan = plan_for::<BothPreLn>();
    let mut graph =
        MaskedLmGraph::<BothPreLn>::build(&BertSettings::default(), true, &plan).unwrap();
    graph
        .graph
        .compile(dropbert::runtime::profile::Profiler::default(), ());
    let gates = graph.gate_ids();
    let mut schedule = GateSchedule::new(&mut graph.graph, gates);
    let all_on = schedule.skipped_nodes(&graph.graph, &[true; 4]).len();
    let one_off = schedule
        .skipped_nodes(&graph.graph, &[true, false, true, true])
        .len();
    assert!(
        one_off > all_on,
        "{one_off} nodes skipped with a block off, {all_on} with none"
    );
}
