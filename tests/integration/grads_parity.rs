//! Loss and gradients of BertForMaskedLM against transformers + PyTorch autograd (float32, CPU);
//! reference made by scripts/make_grads_fixtures.py.

use crate::common::{
    fixture, ids, read_fixture, relative_error, Narrow3Layer, TinyPostLn, Vocab500,
};
use dropbert::{
    config::BertConfig,
    data::batch::TokenBatch,
    drop::DropPlan,
    hf::MissingPolicy,
    nn::{BertForMaskedLM, Parameters},
    runtime::{Backend, ForwardProgram, GradientProgram},
};

fn check<C: BertConfig>(case: &str) {
    let batch_file = read_fixture(&format!("grads/{case}/batch.safetensors"));
    let expected = read_fixture(&format!("grads/{case}/expected.safetensors"));
    let (mut program, _) = GradientProgram::<C>::from_checkpoint(
        &fixture(&format!("grads/{case}/checkpoint")),
        Backend::Cpu,
        MissingPolicy::Refuse,
        &DropPlan::none(),
    )
    .unwrap();
    let batch = TokenBatch {
        input_ids: ids(&batch_file["input_ids"]),
        token_type_ids: ids(&batch_file["token_type_ids"]),
        attention_mask: ids(&batch_file["attention_mask"]),
        rows: C::DIMS.batch_size,
    };
    let labels: Vec<i64> = batch_file["labels"]
        .to_f32()
        .iter()
        .map(|&l| l as i64)
        .collect();
    let outputs = program.run(&batch, &labels).unwrap();

    let expected_loss = expected["loss"].to_f32()[0];
    assert!(
        (outputs.loss - expected_loss).abs() / expected_loss.abs() < 1e-5,
        "{case}: loss {} vs {expected_loss}",
        outputs.loss
    );
    // 1e-3 of the largest gradient of the whole model.
    let scale_floor = 1e-3
        * expected
            .values()
            .flat_map(|t| t.to_f32())
            .fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = (0f32, String::new());
    for (parameter, gradient) in program.parameters().iter().zip(&outputs.gradients) {
        let reference = &expected[&parameter.name];
        assert_eq!(reference.shape, parameter.shape, "{}", parameter.name);
        let error = relative_error(gradient, &reference.to_f32(), scale_floor);
        if error > worst.0 {
            worst = (error, parameter.name.clone());
        }
        assert!(
            error < 1e-4,
            "{case}: {} relative error {error}",
            parameter.name
        );
    }
    eprintln!(
        "{case}: loss {}, worst gradient {} ({:e})",
        outputs.loss, worst.1, worst.0
    );
    assert_eq!(outputs.gradients.len(), expected.len() - 1);
}

#[test]
fn tiny_post_ln_loss_and_gradients_match_pytorch() {
    check::<TinyPostLn>("tiny_post_ln");
}

#[test]
fn narrow_three_layer_loss_and_gradients_match_pytorch() {
    check::<Narrow3Layer>("narrow_3layer");
}

/// A vocabulary of 500: the logits are 512 wide, and the 12 padding columns must change neither
/// the loss nor any gradient.
#[test]
fn a_vocabulary_off_the_logit_width_matches_pytorch() {
    assert_eq!(Vocab500::DIMS.logit_width(), 512);
    check::<Vocab500>("vocab_500");
}

/// The masked-LM logits of every position come back `vocab` wide, the padding sliced off: their
/// cross-entropy at the predicted positions is transformers' loss.
#[test]
fn every_positions_logits_are_the_vocabulary_wide() {
    let dims = Vocab500::DIMS;
    let batch_file = read_fixture("grads/vocab_500/batch.safetensors");
    let expected = read_fixture("grads/vocab_500/expected.safetensors");
    let (mut program, _) = ForwardProgram::<
        Vocab500,
        (
            <Vocab500 as BertConfig>::Batch,
            <Vocab500 as BertConfig>::Seq,
            <Vocab500 as BertConfig>::Vocab,
        ),
    >::from_checkpoint(
        &fixture("grads/vocab_500/checkpoint"),
        Backend::Cpu,
        MissingPolicy::Refuse,
        |graph, inputs, settings| {
            let model = BertForMaskedLM::<Vocab500>::new(graph, settings);
            (model.forward(inputs), model.parameters(""))
        },
    )
    .unwrap();
    let batch = TokenBatch {
        input_ids: ids(&batch_file["input_ids"]),
        token_type_ids: ids(&batch_file["token_type_ids"]),
        attention_mask: ids(&batch_file["attention_mask"]),
        rows: dims.batch_size,
    };
    let logits = program.run(&batch);
    assert_eq!(
        logits.len(),
        dims.batch_size * dims.seq_len * dims.vocab_size
    );
    let labels = batch_file["labels"].to_f32();
    let (mut total, mut count) = (0.0f64, 0);
    for (row, &label) in logits.chunks(dims.vocab_size).zip(&labels) {
        if label < 0.0 {
            continue;
        }
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        total += sum.ln() + max - row[label as usize] as f64;
        count += 1;
    }
    let loss = total / count as f64;
    let expected_loss = expected["loss"].to_f32()[0] as f64;
    assert!(
        (loss - expected_loss).abs() < 1e-5 * expected_loss,
        "{loss} vs {expected_loss}"
    );
}

#[test]
fn grads_subcommand_writes_loss_and_named_gradients() {
    let case = fixture("grads/tiny_post_ln");
    let out =
        std::env::temp_dir().join(format!("dropbert-grads-{}.safetensors", std::process::id()));
    dropbert::cli::run::<TinyPostLn>([
        "bert".as_ref(),
        "grads".as_ref(),
        "--checkpoint".as_ref(),
        case.join("checkpoint").as_os_str(),
        "--batch".as_ref(),
        case.join("batch.safetensors").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .unwrap();
    let written = dropbert::hf::read_tensor_file(&out).unwrap();
    let expected = read_fixture("grads/tiny_post_ln/expected.safetensors");
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(written["loss"].shape, Vec::<usize>::new());
    std::fs::remove_file(out).unwrap();
}

/// With the checkpoint's dropout rates (0.1), a step is reproducible from its seed, and the
/// masks change the loss.
#[test]
fn dropout_follows_the_config_and_is_seeded() {
    let case = fixture("hf/tiny_post_ln");
    let batch_file = read_fixture("grads/tiny_post_ln/batch.safetensors");
    let batch = TokenBatch {
        input_ids: ids(&batch_file["input_ids"]),
        token_type_ids: ids(&batch_file["token_type_ids"]),
        attention_mask: ids(&batch_file["attention_mask"]),
        rows: 4,
    };
    let labels: Vec<i64> = batch_file["labels"]
        .to_f32()
        .iter()
        .map(|&l| l as i64)
        .collect();
    let run = |seed: u64| {
        let (mut program, _) = GradientProgram::<TinyPostLn>::from_checkpoint(
            &case,
            Backend::Cpu,
            MissingPolicy::Refuse,
            &DropPlan::none(),
        )
        .unwrap();
        program.set_dropout_position(seed, 0);
        program.run(&batch, &labels).unwrap()
    };
    let (first, again, other) = (run(1), run(1), run(2));
    assert_eq!(first, again);
    assert_ne!(first.loss, other.loss);
    let expected = read_fixture("grads/tiny_post_ln/expected.safetensors")["loss"].to_f32()[0];
    assert_ne!(
        first.loss, expected,
        "dropout off would give the reference loss"
    );
    assert!(first.loss.is_finite());
}
