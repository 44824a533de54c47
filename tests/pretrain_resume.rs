//! Pretraining end to end on a small generated corpus: the loss falls, checkpoints load in the
//! Hugging Face layout, and an interrupted run resumed from its checkpoint ends with exactly the
//! weights of an uninterrupted one.
use std::path::{Path, PathBuf};

use dropbert::{
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
    let dir = scratch("resume");
    let corpus = write_corpus(&dir);
    let whole = pretrain::<Small>(
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
    pretrain::<Small>(&saving, None, None, Backend::Cpu, false).unwrap();
    let interrupted = dir.join("saving/checkpoint-4");
    let state = TrainingCheckpoint::load(&interrupted).unwrap().state;
    assert_eq!(state.steps_taken, 4);
    let mut rest = state.run.clone();
    rest.out_dir = dir.join("resumed");
    let resumed = pretrain::<Small>(&rest, None, Some(&interrupted), Backend::Cpu, false).unwrap();
    assert_eq!(resumed.steps_taken, 8);
    for file in ["model.safetensors", "optimizer_state.safetensors"] {
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
