//! Pretraining end to end on a small generated corpus: the loss falls, checkpoints load in the
//! Hugging Face layout, and an interrupted run resumed from its checkpoint ends with exactly the
//! weights of an uninterrupted one.
use std::path::{Path, PathBuf};

use dropbert::{
    config::BertConfig,
    drop::LayerDropSchedule,
    hf::{read_tensor_file, HfBertConfig},
    runtime::Backend,
    train::{pretrain, RunConfig, TrainingCheckpoint},
};

dropbert::bert_config! {
    pub Small {
        vocab: 160, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 32, type_vocab: 2, seq: 32, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

// Both methods at once: token dropping from block 1 (16 of 32 tokens kept) and layer
// dropping with a schedule fast enough to skip blocks within a few steps.
dropbert::bert_config! {
    pub SmallBoth {
        vocab: 160, hidden: 32, layers: 3, heads: 2, intermediate: 64,
        max_positions: 32, type_vocab: 2, seq: 32, batch: 4,
        layout: PreLn, token_drop: { layer: 1, kept: 16 }, layer_drop: { theta_bar: 0.5, gamma: 0.2 },
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropbert-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A corpus of simple, repetitive sentences (so a tiny model can learn something quickly).
fn write_corpus(dir: &Path) -> PathBuf {
    let subjects = [
        "the cat",
        "a dog",
        "the bird",
        "my friend",
        "the teacher",
        "a child",
    ];
    let verbs = ["sees", "likes", "finds", "follows", "calls", "helps"];
    let objects = [
        "the ball",
        "a tree",
        "the house",
        "the river",
        "a book",
        "the garden",
    ];
    let mut text = String::new();
    for i in 0..600 {
        let s = subjects[i % subjects.len()];
        let v = verbs[(i / 6) % verbs.len()];
        let o = objects[(i / 36) % objects.len()];
        text.push_str(&format!("{s} {v} {o}. {o} is near {s}.\n"));
        if i % 3 == 2 {
            text.push('\n');
        }
    }
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_config(corpus: PathBuf, out: PathBuf, steps: u64) -> RunConfig {
    RunConfig {
        corpus: Some(corpus),
        out_dir: out,
        steps,
        learning_rate: 3e-3,
        warmup_steps: 2,
        eval_every: 0,
        eval_batches: 8,
        validation_fraction: 0.05,
        hidden_dropout: 0.1,
        attention_dropout: 0.1,
        seed: 5,
        ..RunConfig::default()
    }
}

#[test]
fn loss_falls_and_the_checkpoint_is_a_hugging_face_checkpoint() {
    let dir = scratch("pretrain");
    let corpus = write_corpus(&dir);
    let outcome = pretrain::<Small>(
        &run_config(corpus, dir.join("run"), 40),
        None,
        None,
        Backend::Cpu,
        false,
    )
    .unwrap();
    let initial = outcome.initial_validation.unwrap().loss;
    let last = outcome.final_validation.loss;
    assert!(
        initial > 4.0,
        "an untrained model is near ln(160) = 5.1, not {initial}"
    );
    assert!(last < initial - 1.5, "validation loss {initial} -> {last}");
    let config = HfBertConfig::read(&outcome.final_checkpoint.join("config.json")).unwrap();
    config.check_matches::<Small>().unwrap();
    let weights = read_tensor_file(&outcome.final_checkpoint.join("model.safetensors")).unwrap();
    assert!(weights.contains_key("bert.embeddings.word_embeddings.weight"));
    assert!(weights.contains_key("cls.predictions.bias"));
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"train\"")).count(),
        40
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_run_resumes_bit_for_bit() {
    resumes_bit_for_bit::<Small>(
        "resume",
        &["model.safetensors", "optimizer_state.safetensors"],
    );
}

#[test]
fn an_interrupted_run_with_both_drops_resumes_bit_for_bit() {
    resumes_bit_for_bit::<SmallBoth>(
        "resume-both",
        &[
            "model.safetensors",
            "optimizer_state.safetensors",
            "token_importance.safetensors",
        ],
    );
}

#[test]
fn a_run_with_both_drops_learns_skips_blocks_and_updates_the_importance_table() {
    let dir = scratch("pretrain-both");
    let corpus = write_corpus(&dir);
    let mut run = run_config(corpus, dir.join("run"), 40);
    run.layer_drop = Some(LayerDropSchedule {
        theta_bar: 0.5,
        gamma: 0.1,
    });
    let outcome = pretrain::<SmallBoth>(&run, None, None, Backend::Cpu, false).unwrap();
    let (initial, last) = (
        outcome.initial_validation.unwrap().loss,
        outcome.final_validation.loss,
    );
    assert!(last < initial - 1.0, "validation loss {initial} -> {last}");
    let metrics = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let blocks_run: Vec<u64> = metrics
        .lines()
        .filter(|l| l.contains("\"train\""))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["blocks_run"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(blocks_run.len(), 40);
    assert!(
        blocks_run.iter().any(|&b| b < 3),
        "no block was ever skipped"
    );
    let table = read_tensor_file(
        &outcome
            .final_checkpoint
            .join("token_importance.safetensors"),
    )
    .unwrap()["token_importance"]
        .to_f32();
    assert_eq!(table.len(), 160);
    let moved = table
        .iter()
        .filter(|&&v| v != 10.0 && v.abs() != 1e4)
        .count();
    assert!(
        moved > 10,
        "only {moved} ids moved from their initial importance"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn resumes_bit_for_bit<C: BertConfig>(name: &str, files: &[&str]) {
    let dir = scratch(name);
    let corpus = write_corpus(&dir);
    let whole = pretrain::<C>(
        &run_config(corpus.clone(), dir.join("whole"), 8),
        None,
        None,
        Backend::Cpu,
        false,
    )
    .unwrap();
    // The same run, saving at step 4: its checkpoint-4 is what an interrupted run leaves.
    let mut saving = run_config(corpus, dir.join("saving"), 8);
    saving.save_every = 4;
    pretrain::<C>(&saving, None, None, Backend::Cpu, false).unwrap();
    let interrupted = dir.join("saving/checkpoint-4");
    let state = TrainingCheckpoint::load(&interrupted).unwrap().state;
    assert_eq!(state.steps_taken, 4);
    let mut rest = state.run.clone();
    rest.out_dir = dir.join("resumed");
    let resumed = pretrain::<C>(&rest, None, Some(&interrupted), Backend::Cpu, false).unwrap();
    assert_eq!(resumed.steps_taken, 8);
    for file in files {
        let expected = read_tensor_file(&whole.final_checkpoint.join(file)).unwrap();
        let actual = read_tensor_file(&resumed.final_checkpoint.join(file)).unwrap();
        assert_eq!(expected.len(), actual.len());
        for (name, tensor) in &expected {
            assert!(
                actual[name] == *tensor,
                "{file}: {name} differs after resuming"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Queueing each step before reading the last one's results (as `pretrain` and `bench` run) must
/// report and train exactly as stepping one at a time: each step's outputs are taken out of the
/// program, so the next execution computes its own rather than finding the last one's in place.
#[test]
fn steps_queued_ahead_train_as_steps_read_one_at_a_time() {
    use dropbert::{
        config::BertSettings,
        data::tokenizer::SpecialTokenIds,
        drop::{DropPlan, TokenDropSettings},
        hf::initial_values,
        nn::Dropout,
        optim::OptimizerSettings,
        train::{synthetic_batch, QueuedStep, TrainStep, TrainingProgram},
    };
    use rand::{rngs::StdRng, SeedableRng};

    let dims = SmallBoth::DIMS;
    let settings = BertSettings {
        dropout: Dropout::new(0.1, 0.1),
        ..BertSettings::default()
    };
    let special = SpecialTokenIds::for_random_ids(dims.vocab_size);
    let plan = DropPlan::for_training::<SmallBoth>(
        Some(TokenDropSettings::default()),
        dims.layer_drop.map(LayerDropSchedule::from),
        special,
    )
    .unwrap();
    let program = || {
        let mut program = TrainingProgram::<SmallBoth>::compile(
            Backend::Cpu,
            &settings,
            OptimizerSettings::default(),
            7,
            &plan,
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let weights = program
            .parameters()
            .iter()
            .map(|p| initial_values(p, &settings, &mut rng))
            .collect();
        program.start(weights);
        let (token_drop, special) = plan.token_drop.as_ref().unwrap();
        program.set_importance(token_drop.initial_table(dims.vocab_size, *special));
        program
    };
    let batches: Vec<_> = (0..6).map(|seed| synthetic_batch(&dims, seed)).collect();

    let mut one_at_a_time = program();
    let read_each: Vec<TrainStep> = batches
        .iter()
        .map(|batch| one_at_a_time.step(batch).unwrap())
        .collect();

    let mut queued_ahead = program();
    let mut read_late = Vec::new();
    let mut in_flight = None;
    for batch in &batches {
        let queued = queued_ahead.queue_step(batch).unwrap();
        read_late.extend(in_flight.replace(queued).map(QueuedStep::finish));
    }
    read_late.extend(in_flight.map(QueuedStep::finish));

    let reports = |steps: &[TrainStep]| -> Vec<_> {
        steps
            .iter()
            .map(|s| {
                (
                    s.step,
                    s.loss,
                    s.grad_norm,
                    s.token_losses.clone(),
                    s.gates.clone(),
                )
            })
            .collect()
    };
    assert_eq!(reports(&read_late), reports(&read_each));
    // Different batches give different losses: a step that found the last one's outputs in
    // place would repeat them.
    assert!(read_each
        .windows(2)
        .all(|pair| pair[0].loss != pair[1].loss));
    assert!(
        read_each.iter().any(|s| !s.gates.iter().all(|&on| on)),
        "a block was skipped"
    );
    assert_eq!(
        queued_ahead.weights().unwrap(),
        one_at_a_time.weights().unwrap()
    );
    assert_eq!(queued_ahead.importance(), one_at_a_time.importance());
}
