//! The in-graph optimizers against PyTorch: AdamW against `torch.optim.AdamW`, LAMB against the
//! reference in scripts/make_optimizer_fixtures.py, each with and without
//! `torch.nn.utils.clip_grad_norm_`, fed the same gradients (as graph inputs standing in for
//! autograd's outputs) for 5 steps of a warm-up/decay schedule; plus the schedules against
//! `transformers`, the no-decay rule, clipping, the trust ratio, state save/restore, and one
//! graph holding a loss, its autograd backward pass and the update.

use std::collections::BTreeMap;

use crate::common::{fixture, read_fixture};
use dropbert::{
    autograd::{add_backward, TensorRef},
    hf::TensorData,
    nn::{ParameterInit, ParameterRef},
    ops::MAX_GROUP,
    optim::{
        clip_global_norm, decays, flatten, trust_ratio, AdamW, Algorithm, FlatTensor, Lamb,
        LearningRateSchedule, Optimizer, OptimizerSettings, ParameterGradient, STATE_SUFFIXES,
    },
    runtime::{host_values, Backend},
};
use luminal::prelude::*;

const WEIGHT: &str = "bert.encoder.layer.0.attention.self.query.weight";
const BIAS: &str = "bert.encoder.layer.0.attention.self.query.bias";
const LAYER_NORM: &str = "bert.encoder.layer.0.attention.output.LayerNorm.weight";
const NAMES: [&str; 3] = [WEIGHT, BIAS, LAYER_NORM];
const STEPS: usize = 5;

/// The fixtures' settings (see the script): betas (0.9, 0.999), eps 1e-6, decay 0.01, peak lr
/// 0.05, 2 warm-up steps of 5.
fn settings(algorithm: Algorithm, max_grad_norm: Option<f32>) -> OptimizerSettings {
    OptimizerSettings {
        algorithm,
        peak_learning_rate: 0.05,
        schedule: LearningRateSchedule::LinearWarmupLinearDecay {
            warmup_steps: 2,
            total_steps: 5,
        },
        max_grad_norm,
    }
}

fn adamw() -> Algorithm {
    Algorithm::AdamW(AdamW {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-6,
        weight_decay: 0.01,
    })
}

fn lamb() -> Algorithm {
    Algorithm::Lamb(Lamb {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-6,
        weight_decay: 0.01,
    })
}

/// Within 1e-6 absolute or 1e-5 relative, element by element.
fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let error = (a - e).abs();
        assert!(
            error <= 1e-6 || error <= 1e-5 * e.abs(),
            "{what}[{i}]: {a} vs {e} (error {error:e})"
        );
    }
}

/// A compiled update graph for the three fixture parameters. The weight's gradient arrives as the
/// transpose of a `[4, 5]` input, as a matmul's backward pass may produce it, so the update also
/// runs through a permuted (non-contiguous) gradient view.
struct Harness {
    // Boxed: graph tensors point at their graph, so it must not move.
    graph: Box<Graph>,
    parameters: Vec<ParameterRef>,
    gradient_inputs: Vec<NodeIndex>,
    optimizer: Optimizer,
}

impl Harness {
    fn new(settings: OptimizerSettings) -> Self {
        let mut graph = Box::new(Graph::new());
        let weight = graph.named_tensor::<R2<5, 4>>(WEIGHT).keep();
        let bias = graph.named_tensor::<R1<5>>(BIAS).keep();
        let layer_norm = graph.named_tensor::<R1<4>>(LAYER_NORM).keep();
        let weight_gradient_t = graph.named_tensor::<R2<4, 5>>("weight gradient (transposed)");
        let bias_gradient = graph.named_tensor::<R1<5>>("bias gradient");
        let layer_norm_gradient = graph.named_tensor::<R1<4>>("LayerNorm gradient");
        let parameter = |name: &str, id, shape: &[usize], init| ParameterRef {
            name: name.into(),
            id,
            shape: shape.to_vec(),
            init,
        };
        let mut parameters = vec![
            parameter(WEIGHT, weight.id, &[5, 4], ParameterInit::Normal),
            parameter(BIAS, bias.id, &[5], ParameterInit::Zeros),
            parameter(LAYER_NORM, layer_norm.id, &[4], ParameterInit::Ones),
        ];
        let gradients = vec![
            ParameterGradient::new(
                parameters[0].clone(),
                weight_gradient_t.permute::<R2<5, 4>, Axes2<1, 0>>(),
            )
            .unwrap(),
            ParameterGradient::new(parameters[1].clone(), bias_gradient).unwrap(),
            ParameterGradient::new(parameters[2].clone(), layer_norm_gradient).unwrap(),
        ];
        let mut optimizer = Optimizer::build(&mut graph, gradients, settings).unwrap();
        let mut gradient_inputs = vec![
            weight_gradient_t.id,
            bias_gradient.id,
            layer_norm_gradient.id,
        ];
        let mut remap = optimizer.ids_mut();
        remap.extend(parameters.iter_mut().map(|p| &mut p.id));
        remap.extend(gradient_inputs.iter_mut());
        Backend::Cpu.compile(&mut graph, remap).unwrap();
        Self {
            graph,
            parameters,
            gradient_inputs,
            optimizer,
        }
    }

    fn set_parameters(&mut self, values: impl Fn(&str) -> Vec<f32>) {
        for parameter in &self.parameters {
            let values = values(&parameter.name);
            assert_eq!(values.len(), parameter.numel());
            self.graph.set_tensor(parameter.id, 0, Tensor::new(values));
        }
    }

    fn parameter_values(&self, name: &str) -> Vec<f32> {
        let parameter = self.parameters.iter().find(|p| p.name == name).unwrap();
        host_values(&self.graph, parameter.id).unwrap()
    }

    /// One training step with the fixture's raw gradients of step `k`; returns the logged norm.
    fn step(&mut self, gradients: &BTreeMap<String, TensorData>, k: usize) -> f32 {
        for (name, &id) in NAMES.iter().zip(&self.gradient_inputs) {
            let mut values = gradients[&format!("gradients/{k}/{name}")].to_f32();
            if *name == WEIGHT {
                values = transpose(&values, 5, 4);
            }
            self.graph.set_tensor(id, 0, Tensor::new(values));
        }
        self.optimizer.prepare_step(&mut self.graph);
        self.graph.execute();
        let report = self.optimizer.finish_step(&mut self.graph);
        assert_eq!(report.step, k as u64);
        report.grad_norm().expect("the step computes the norm")
    }
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| values[r * cols + c]))
        .collect()
}

/// Runs 5 steps from the fixture's start and checks parameters, state and gradient norm after
/// every step against the `run` trajectory (`clip` or `noclip`).
fn check_trajectory(file: &str, algorithm: Algorithm, run: &str) {
    let expected = read_fixture(&format!("optim/{file}"));
    let max_grad_norm = (run == "clip").then_some(1.0);
    let mut harness = Harness::new(settings(algorithm, max_grad_norm));
    harness.set_parameters(|name| expected[&format!("initial/{name}")].to_f32());
    harness.optimizer.reset_state(&mut harness.graph);
    let lrs = expected["lr"].to_f32();
    for (k, &lr) in lrs.iter().enumerate().take(STEPS) {
        assert_eq!(
            harness.optimizer.learning_rate(),
            lr,
            "{file} lr at step {k}"
        );
        let norm = harness.step(&expected, k);
        assert_close(
            &[norm],
            &expected[&format!("{run}/{k}/grad_norm")].to_f32(),
            &format!("{file} {run} grad norm at step {k}"),
        );
        for name in NAMES {
            assert_close(
                &harness.parameter_values(name),
                &expected[&format!("{run}/{k}/{name}")].to_f32(),
                &format!("{file} {run} {name} after step {k}"),
            );
        }
        for (name, values) in harness.optimizer.read_state(&harness.graph).unwrap() {
            assert_close(
                &values,
                &expected[&format!("{run}/{k}/{name}")].to_f32(),
                &format!("{file} {run} {name} after step {k}"),
            );
        }
    }
}

#[test]
fn adamw_matches_torch_without_clipping() {
    check_trajectory("adamw.safetensors", adamw(), "noclip");
}

#[test]
fn adamw_matches_torch_with_clipping() {
    check_trajectory("adamw.safetensors", adamw(), "clip");
}

#[test]
fn lamb_matches_reference_without_clipping() {
    check_trajectory("lamb.safetensors", lamb(), "noclip");
}

#[test]
fn lamb_matches_reference_with_clipping() {
    check_trajectory("lamb.safetensors", lamb(), "clip");
}

/// Saving parameters and state after 2 steps and restoring them into a freshly compiled graph
/// continues the same trajectory.
#[test]
fn state_saved_mid_run_resumes_the_trajectory() {
    let expected = read_fixture("optim/adamw.safetensors");
    let mut first = Harness::new(settings(adamw(), Some(1.0)));
    first.set_parameters(|name| expected[&format!("initial/{name}")].to_f32());
    first.optimizer.reset_state(&mut first.graph);
    for k in 0..2 {
        first.step(&expected, k);
    }
    let names: Vec<String> = first
        .optimizer
        .state_tensors()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let expected_names: Vec<String> = NAMES
        .iter()
        .flat_map(|n| STATE_SUFFIXES.map(|s| format!("{n}.{s}")))
        .collect();
    assert_eq!(names, expected_names);
    let state: BTreeMap<String, Vec<f32>> = first
        .optimizer
        .read_state(&first.graph)
        .unwrap()
        .into_iter()
        .collect();
    let parameters: BTreeMap<String, Vec<f32>> = NAMES
        .iter()
        .map(|&n| (n.to_string(), first.parameter_values(n)))
        .collect();

    let mut second = Harness::new(settings(adamw(), Some(1.0)));
    second.set_parameters(|name| parameters[name].clone());
    second
        .optimizer
        .load_state(&mut second.graph, &state, first.optimizer.steps_taken())
        .unwrap();
    for k in 2..STEPS {
        second.step(&expected, k);
    }
    for name in NAMES {
        assert_close(
            &second.parameter_values(name),
            &expected[&format!("clip/4/{name}")].to_f32(),
            &format!("resumed {name}"),
        );
    }

    // A state that does not fit is refused.
    let mut short = state.clone();
    short.get_mut(&expected_names[0]).unwrap().pop();
    assert!(second
        .optimizer
        .load_state(&mut second.graph, &short, 0)
        .is_err());
    let mut missing = state.clone();
    missing.remove(&expected_names[1]);
    assert!(second
        .optimizer
        .load_state(&mut second.graph, &missing, 0)
        .is_err());
    let mut extra = state;
    extra.insert("cls.predictions.bias.exp_avg".into(), vec![0.0]);
    assert!(second
        .optimizer
        .load_state(&mut second.graph, &extra, 0)
        .is_err());
}

/// The clipped gradients themselves, and the norm output, against torch's total norm.
#[test]
fn clipping_scales_by_min_of_one_and_max_norm_over_norm() {
    let expected = read_fixture("optim/adamw.safetensors");
    for k in 0..STEPS {
        let torch_norm = expected[&format!("clip/{k}/grad_norm")].to_f32()[0];
        let mut graph = Box::new(Graph::new());
        let g0 = graph.named_tensor::<R2<5, 4>>("g0");
        let g1 = graph.named_tensor::<R1<5>>("g1");
        let g2 = graph.named_tensor::<R1<4>>("g2");
        let clipped = clip_global_norm(&[flatten(g0), flatten(g1), flatten(g2)], 1.0);
        let mut outputs: Vec<FlatTensor> =
            clipped.gradients.iter().map(|&g| g.retrieve()).collect();
        let mut norm = clipped.norm.retrieve();
        let mut ids = [g0.id, g1.id, g2.id];
        let mut remap: Vec<&mut NodeIndex> = ids.iter_mut().collect();
        remap.push(&mut norm.id);
        remap.extend(outputs.iter_mut().map(|o| &mut o.id));
        Backend::Cpu.compile(&mut graph, remap).unwrap();
        let raw: Vec<Vec<f32>> = NAMES
            .iter()
            .map(|n| expected[&format!("gradients/{k}/{n}")].to_f32())
            .collect();
        for (id, values) in ids.iter().zip(&raw) {
            graph.set_tensor(*id, 0, Tensor::new(values.clone()));
        }
        graph.execute();
        assert_close(&norm.data(), &[torch_norm], &format!("norm at step {k}"));
        let scale = (1.0 / (torch_norm + 1e-6)).min(1.0);
        for (output, values) in outputs.iter().zip(&raw) {
            let want: Vec<f32> = values.iter().map(|v| v * scale).collect();
            assert_close(
                &output.data(),
                &want,
                &format!("clipped gradient at step {k}"),
            );
        }
    }
}

#[test]
fn trust_ratio_is_one_where_a_norm_is_zero() {
    let cases = [
        (0.0, 0.0, 1.0),
        (0.0, 2.0, 1.0),
        (3.0, 0.0, 1.0),
        (3.0, 2.0, 1.5),
    ];
    for (weight_norm, update_norm, want) in cases {
        let mut graph = Box::new(Graph::new());
        let w = graph.tensor::<R0>();
        let u = graph.tensor::<R0>();
        let mut ratio = trust_ratio(w, u).retrieve();
        let (mut w_id, mut u_id) = (w.id, u.id);
        Backend::Cpu
            .compile(&mut graph, (&mut w_id, &mut u_id, &mut ratio.id))
            .unwrap();
        graph.set_tensor(w_id, 0, Tensor::new(vec![weight_norm]));
        graph.set_tensor(u_id, 0, Tensor::new(vec![update_norm]));
        graph.execute();
        assert_eq!(ratio.data(), [want], "{weight_norm} / {update_norm}");
    }
}

#[test]
fn schedules_match_transformers() {
    let path = fixture("optim/schedules.json");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = document["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let warmup_steps = case["warmup_steps"].as_u64().unwrap();
        let total_steps = case["total_steps"].as_u64().unwrap();
        let schedule = match case["kind"].as_str().unwrap() {
            "constant" => LearningRateSchedule::Constant,
            "linear" => LearningRateSchedule::LinearWarmupLinearDecay {
                warmup_steps,
                total_steps,
            },
            "cosine" => LearningRateSchedule::LinearWarmupCosine {
                warmup_steps,
                total_steps,
            },
            other => panic!("unknown schedule {other}"),
        };
        let steps = case["steps"].as_array().unwrap();
        let multipliers = case["multipliers"].as_array().unwrap();
        for (step, want) in steps.iter().zip(multipliers) {
            let (step, want) = (step.as_u64().unwrap(), want.as_f64().unwrap());
            let got = schedule.multiplier(step);
            assert!(
                (got - want).abs() <= 1e-15,
                "{schedule:?} at step {step}: {got} vs transformers {want}"
            );
            assert_eq!(
                schedule.learning_rate(2e-4, step),
                (2e-4f32 as f64 * got) as f32
            );
        }
    }
}

/// The Hugging Face formulas at a few steps, written out.
#[test]
fn schedule_values_by_hand() {
    let linear = LearningRateSchedule::LinearWarmupLinearDecay {
        warmup_steps: 4,
        total_steps: 12,
    };
    // step < warmup: step / warmup; else max(0, (total - step) / (total - warmup)).
    for (step, want) in [
        (0, 0.0),
        (1, 0.25),
        (3, 0.75),
        (4, 1.0),
        (8, 0.5),
        (12, 0.0),
        (20, 0.0),
    ] {
        assert_eq!(linear.multiplier(step), want, "linear at {step}");
    }
    let cosine = LearningRateSchedule::LinearWarmupCosine {
        warmup_steps: 2,
        total_steps: 10,
    };
    // step >= warmup: 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))).
    for (step, want) in [(0, 0.0), (1, 0.5), (2, 1.0), (6, 0.5), (10, 0.0)] {
        assert!(
            (cosine.multiplier(step) - want).abs() < 1e-15,
            "cosine at {step}"
        );
    }
    assert_eq!(
        LearningRateSchedule::Constant.learning_rate(3e-4, 123),
        3e-4
    );
    // No warm-up at all: the first step uses the peak.
    let no_warmup = LearningRateSchedule::LinearWarmupLinearDecay {
        warmup_steps: 0,
        total_steps: 10,
    };
    assert_eq!(no_warmup.learning_rate(1e-3, 0), 1e-3);
}

#[test]
fn no_decay_for_biases_and_layer_norms() {
    assert!(decays(WEIGHT));
    assert!(!decays(BIAS));
    assert!(!decays(LAYER_NORM));
    for name in [
        "bert.embeddings.LayerNorm.bias",
        "cls.predictions.bias",
        "bert.encoder.layer.2.PreAttentionLayerNorm.weight",
        "bert.encoder.layer.2.PostAttentionLayerNorm.bias",
        "bert.encoder.FinalLayerNorm.weight",
    ] {
        assert!(!decays(name), "{name}");
    }
    for name in [
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.2.intermediate.dense.weight",
        "cls.predictions.transform.dense.weight",
    ] {
        assert!(decays(name), "{name}");
    }
}

#[test]
fn gradient_of_the_wrong_shape_is_refused() {
    let mut graph = Box::new(Graph::new());
    let weight = graph.named_tensor::<R2<5, 4>>(WEIGHT);
    let gradient = graph.named_tensor::<R2<4, 5>>("gradient");
    let parameter = ParameterRef {
        name: WEIGHT.into(),
        id: weight.id,
        shape: vec![5, 4],
        init: ParameterInit::Normal,
    };
    let error = ParameterGradient::new(parameter, gradient).err().unwrap();
    assert!(error.to_string().contains(WEIGHT), "{error}");
}

#[test]
fn settings_round_trip_through_json() {
    let settings = OptimizerSettings {
        algorithm: lamb(),
        peak_learning_rate: 2e-3,
        schedule: LearningRateSchedule::LinearWarmupCosine {
            warmup_steps: 100,
            total_steps: 1000,
        },
        max_grad_norm: None,
    };
    let text = serde_json::to_string(&settings).unwrap();
    assert!(text.contains(r#""algorithm":{"name":"lamb""#), "{text}");
    assert_eq!(
        serde_json::from_str::<OptimizerSettings>(&text).unwrap(),
        settings
    );
    let default = OptimizerSettings::default();
    let text = serde_json::to_string(&default).unwrap();
    assert!(text.contains(r#""algorithm":{"name":"adamw""#), "{text}");
    assert_eq!(
        serde_json::from_str::<OptimizerSettings>(&text).unwrap(),
        default
    );
}

/// Forward pass, autograd's backward pass and the AdamW update in one compiled graph: a linear
/// least-squares fit converges, with only the loss and the gradient norm leaving the graph.
#[test]
fn trains_least_squares_through_autograd() {
    let mut graph = Box::new(Graph::new());
    let weight = graph.named_tensor::<R2<3, 4>>("dense.weight").keep();
    let bias = graph.named_tensor::<R1<3>>("dense.bias").keep();
    let x = graph.named_tensor::<R2<8, 4>>("x");
    let target = graph.named_tensor::<R2<8, 3>>("target");
    let prediction =
        x.matmul(weight.permute::<R2<4, 3>, Axes2<1, 0>>()) + bias.expand::<R2<8, 3>, Axis<0>>();
    let error = prediction - target;
    let mut loss = ((error * error).sum_reduce::<R0, Axes2<0, 1>>() * (1.0 / 24.0)).retrieve();
    let parameters = vec![
        ParameterRef {
            name: "dense.weight".into(),
            id: weight.id,
            shape: vec![3, 4],
            init: ParameterInit::Normal,
        },
        ParameterRef {
            name: "dense.bias".into(),
            id: bias.id,
            shape: vec![3],
            init: ParameterInit::Zeros,
        },
    ];
    let gradients: Vec<ParameterGradient> =
        add_backward(&mut graph, TensorRef::of(loss), &parameters, &[])
            .unwrap()
            .into_iter()
            .map(|g| ParameterGradient::new(g.parameter, g.tensor.typed::<()>(&mut graph)).unwrap())
            .collect();
    let settings = OptimizerSettings {
        algorithm: Algorithm::AdamW(AdamW::default()),
        peak_learning_rate: 0.05,
        schedule: LearningRateSchedule::Constant,
        max_grad_norm: Some(1.0),
    };
    let mut optimizer = Optimizer::build(&mut graph, gradients, settings).unwrap();
    // The gradients are consumed in the graph: nothing but the loss and the norm is retrieved.
    assert_eq!(graph.to_retrieve.len(), 2);
    let mut ids = [weight.id, bias.id, x.id, target.id];
    let mut remap = optimizer.ids_mut();
    remap.extend(ids.iter_mut());
    remap.push(&mut loss.id);
    Backend::Cpu.compile(&mut graph, remap).unwrap();
    let [weight_id, bias_id, x_id, target_id] = ids;

    // Targets from a known weight and bias 0.5.
    let xs: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
    let true_weight: Vec<f32> = (0..12).map(|i| (i as f32 - 6.0) / 4.0).collect();
    let targets: Vec<f32> = (0..8)
        .flat_map(|r| (0..3).map(move |o| (r, o)))
        .map(|(r, o)| {
            (0..4)
                .map(|k| xs[r * 4 + k] * true_weight[o * 4 + k])
                .sum::<f32>()
                + 0.5
        })
        .collect();
    graph.set_tensor(weight_id, 0, Tensor::new(vec![0.0f32; 12]));
    graph.set_tensor(bias_id, 0, Tensor::new(vec![0.0f32; 3]));
    optimizer.reset_state(&mut graph);
    let mut losses = Vec::new();
    for _ in 0..300 {
        graph.set_tensor(x_id, 0, Tensor::new(xs.clone()));
        graph.set_tensor(target_id, 0, Tensor::new(targets.clone()));
        optimizer.prepare_step(&mut graph);
        graph.execute();
        losses.push(loss.data()[0]);
        loss.drop();
        let report = optimizer.finish_step(&mut graph);
        assert!(report.grad_norm().unwrap().is_finite());
    }
    assert!(
        losses[299] < 1e-4 * losses[0],
        "loss {} -> {}",
        losses[0],
        losses[299]
    );
    let fitted = host_values(&graph, weight_id).unwrap();
    assert!(fitted
        .iter()
        .zip(&true_weight)
        .all(|(a, b)| (a - b).abs() < 0.02));
}

/// More parameters than one fused AdamW op takes (`MAX_GROUP`), each with its own values: every
/// new parameter and moment lands in its own tensor's slot, against AdamW written out in f64.
#[test]
fn adamw_over_several_groups_updates_each_parameter_in_its_own_slot() {
    const COUNT: usize = 2 * MAX_GROUP + 7;
    const STEPS_TAKEN: usize = 3;
    let mut graph = Box::new(Graph::new());
    let mut parameters = Vec::new();
    let mut gradient_inputs = Vec::new();
    let mut gradients = Vec::new();
    for i in 0..COUNT {
        // Odd tensors are biases, which do not decay.
        let kind = if i % 2 == 0 { "weight" } else { "bias" };
        let name = format!("encoder.layer.{i}.dense.{kind}");
        let parameter = graph.named_tensor::<R1<3>>(&name).keep();
        let gradient = graph.named_tensor::<R1<3>>(&format!("{name} gradient"));
        let reference = ParameterRef {
            name,
            id: parameter.id,
            shape: vec![3],
            init: ParameterInit::Normal,
        };
        gradients.push(ParameterGradient::new(reference.clone(), gradient).unwrap());
        parameters.push(reference);
        gradient_inputs.push(gradient.id);
    }
    let mut optimizer =
        Optimizer::build(&mut graph, gradients, settings(adamw(), Some(1.0))).unwrap();
    let mut remap = optimizer.ids_mut();
    remap.extend(parameters.iter_mut().map(|p| &mut p.id));
    remap.extend(gradient_inputs.iter_mut());
    Backend::Cpu.compile(&mut graph, remap).unwrap();

    let start = |i: usize, j: usize| ((i * 3 + j) % 17) as f64 / 8.0 - 1.0;
    let gradient =
        |step: usize, i: usize, j: usize| ((i * 3 + j + 5 * step) as f64 * 0.7).sin() / 4.0;
    let mut want: Vec<[Vec<f64>; 3]> = (0..COUNT)
        .map(|i| {
            [
                (0..3).map(|j| start(i, j)).collect(),
                vec![0.0; 3],
                vec![0.0; 3],
            ]
        })
        .collect();
    for (i, parameter) in parameters.iter().enumerate() {
        let values: Vec<f32> = want[i][0].iter().map(|&v| v as f32).collect();
        graph.set_tensor(parameter.id, 0, Tensor::new(values));
    }
    optimizer.reset_state(&mut graph);
    let (beta1, beta2, epsilon, decay) = (0.9, 0.999, 1e-6, 0.01);
    for step in 0..STEPS_TAKEN {
        let learning_rate = optimizer.learning_rate() as f64;
        for (i, &id) in gradient_inputs.iter().enumerate() {
            let values: Vec<f32> = (0..3).map(|j| gradient(step, i, j) as f32).collect();
            graph.set_tensor(id, 0, Tensor::new(values));
        }
        optimizer.prepare_step(&mut graph);
        graph.execute();
        optimizer.finish_step(&mut graph);

        let norm = (0..COUNT)
            .flat_map(|i| (0..3).map(move |j| gradient(step, i, j).powi(2)))
            .sum::<f64>()
            .sqrt();
        let scale = (1.0 / (norm + 1e-6)).min(1.0);
        let t = (step + 1) as i32;
        for (i, [p, m, v]) in want.iter_mut().enumerate() {
            for j in 0..3 {
                let g = gradient(step, i, j) * scale;
                if i % 2 == 0 {
                    p[j] *= 1.0 - learning_rate * decay;
                }
                m[j] = beta1 * m[j] + (1.0 - beta1) * g;
                v[j] = beta2 * v[j] + (1.0 - beta2) * g * g;
                let denominator = (v[j] / (1.0 - beta2.powi(t))).sqrt() + epsilon;
                p[j] -= learning_rate / (1.0 - beta1.powi(t)) * m[j] / denominator;
            }
        }
    }
    let state: BTreeMap<String, Vec<f32>> =
        optimizer.read_state(&graph).unwrap().into_iter().collect();
    let as_f32 = |values: &[f64]| values.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    for (parameter, [p, m, v]) in parameters.iter().zip(&want) {
        let name = &parameter.name;
        assert_close(
            &host_values(&graph, parameter.id).unwrap(),
            &as_f32(p),
            name,
        );
        assert_close(&state[&format!("{name}.exp_avg")], &as_f32(m), name);
        assert_close(&state[&format!("{name}.exp_avg_sq")], &as_f32(v), name);
    }
}
