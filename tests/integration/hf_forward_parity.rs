//! The forward pass against Hugging Face `transformers` (float32, CPU) on random checkpoints of
//! several shapes; reference outputs made by scripts/make_reference_fixtures.py.

use crate::common::{
    fixture, max_abs_diff, read_fixture, reference_batch, Narrow3Layer, TinyPostLn,
};
use std::collections::BTreeMap;

use dropbert::{
    config::BertConfig,
    hf::{MissingPolicy, TensorData},
    nn::{BertForMaskedLM, BertModel, Parameters},
    runtime::{hidden_state_program, Backend, ForwardProgram},
};
use luminal::prelude::Shape;

const TOLERANCE: f32 = 1e-4;

dropbert::bert_config! {
    pub BertModelNames {
        vocab: 512, hidden: 24, layers: 1, heads: 3, intermediate: 40,
        max_positions: 32, type_vocab: 2, seq: 12, batch: 7,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn check_last_hidden_state<C: BertConfig>(case: &str) {
    let expected = read_fixture(&format!("hf/{case}/expected.safetensors"));
    let (mut program, report) =
        hidden_state_program::<C>(&fixture(&format!("hf/{case}")), Backend::Cpu).unwrap();
    assert!(report.initialized.is_empty());
    let actual = run_all_rows(
        &mut program,
        &expected,
        C::DIMS.seq_len * C::DIMS.hidden_size,
    );
    let error = max_abs_diff(&actual, &expected["last_hidden_state"].to_f32());
    assert!(error < TOLERANCE, "{case}: max abs error {error}");
}

/// Runs `BertForMaskedLM` on the reference inputs, returning the logits of all rows.
fn masked_lm_logits<C: BertConfig>(case: &str) -> Vec<f32> {
    let expected = read_fixture(&format!("hf/{case}/expected.safetensors"));
    let (mut program, report) = ForwardProgram::from_checkpoint(
        &fixture(&format!("hf/{case}")),
        Backend::Cpu,
        MissingPolicy::Refuse,
        |graph, inputs, settings| {
            let model = BertForMaskedLM::<C>::new(graph, settings);
            (model.forward(inputs), model.parameters(""))
        },
    )
    .unwrap();
    assert!(report.unused.is_empty(), "unused: {:?}", report.unused);
    run_all_rows(
        &mut program,
        &expected,
        C::DIMS.seq_len * C::DIMS.vocab_size,
    )
}

fn run_all_rows<C: BertConfig, O: Shape>(
    program: &mut ForwardProgram<C, O>,
    expected: &BTreeMap<String, TensorData>,
    row_len: usize,
) -> Vec<f32> {
    let rows = expected["input_ids"].shape[0];
    let mut all = Vec::new();
    for start in (0..rows).step_by(C::DIMS.batch_size) {
        let batch = reference_batch::<C>(expected, start);
        all.extend_from_slice(&program.run(&batch)[..batch.rows * row_len]);
    }
    all
}

#[test]
fn tiny_post_ln_matches_transformers() {
    check_last_hidden_state::<TinyPostLn>("tiny_post_ln");
}

#[test]
fn narrow_three_layer_model_with_three_token_types_matches_transformers() {
    check_last_hidden_state::<Narrow3Layer>("narrow_3layer");
}

#[test]
fn bert_model_checkpoint_names_load_and_match_transformers() {
    check_last_hidden_state::<BertModelNames>("bertmodel_names");
}

#[test]
fn masked_lm_logits_match_transformers() {
    for (case, logits) in [
        (
            "tiny_post_ln",
            masked_lm_logits::<TinyPostLn>("tiny_post_ln"),
        ),
        (
            "narrow_3layer",
            masked_lm_logits::<Narrow3Layer>("narrow_3layer"),
        ),
    ] {
        let expected = read_fixture(&format!("hf/{case}/expected.safetensors"));
        let error = max_abs_diff(&logits, &expected["mlm_logits"].to_f32());
        assert!(error < TOLERANCE, "{case}: max abs logit error {error}");
    }
}

#[test]
fn pooler_matches_transformers() {
    type C = BertModelNames;
    let expected = read_fixture("hf/bertmodel_names/expected.safetensors");
    let (mut program, report) = ForwardProgram::from_checkpoint(
        &fixture("hf/bertmodel_names"),
        Backend::Cpu,
        MissingPolicy::Refuse,
        |graph, inputs, settings| {
            let model = BertModel::<C>::new(graph, settings, true);
            let pooled = model
                .pooler
                .as_ref()
                .unwrap()
                .forward(model.forward(inputs));
            (pooled, model.parameters(""))
        },
    )
    .unwrap();
    assert!(report.unused.is_empty(), "unused: {:?}", report.unused);
    let pooled = run_all_rows(&mut program, &expected, C::DIMS.hidden_size);
    let error = max_abs_diff(&pooled, &expected["pooler_output"].to_f32());
    assert!(error < TOLERANCE, "max abs pooler error {error}");
}
