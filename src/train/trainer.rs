use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::json;

use super::{
    EvaluationProgram, MetricsLog, QueuedStep, RunConfig, TrainingCheckpoint, TrainingProgram,
    TrainingState, ValidationMetrics,
};
use crate::{
    config::{BertConfig, BertSettings},
    data::{
        corpus::{read_corpus, CorpusLimits, CorpusReader, Document, DocumentMode},
        embedded::{WORDNET_CORPUS_GZ, WORDNET_SOURCE, WORDNET_VOCAB},
        masking::MlmMasking,
        mlm_batches::{DataPosition, MlmDataset, MlmDatasetOptions},
        tokenizer::WordPieceTokenizer,
        vocab_training::{train_wordpiece_vocab, VocabTraining},
    },
    drop::DropPlan,
    hf::{initial_values, load_weights, HfBertConfig, MissingPolicy},
    nn::Dropout,
    runtime::Backend,
    DropbertError, Result,
};

/// How a finished run ended.
#[derive(Debug, Clone)]
pub struct PretrainOutcome {
    /// Validation before the first step of this run (absent when resuming).
    pub initial_validation: Option<ValidationMetrics>,
    pub final_validation: ValidationMetrics,
    pub final_checkpoint: PathBuf,
    pub steps_taken: u64,
}

/// Pretrains configuration `C` as `run` says, from scratch, from `init` (a Hugging Face
/// checkpoint), or continuing the training checkpoint `resume`.
pub fn pretrain<C: BertConfig>(
    run: &RunConfig,
    init: Option<&Path>,
    resume: Option<&Path>,
    backend: Backend,
    show_progress: bool,
) -> Result<PretrainOutcome> {
    let dims = C::DIMS;
    std::fs::create_dir_all(&run.out_dir).map_err(|e| DropbertError::io(&run.out_dir, e))?;
    std::fs::write(run.out_dir.join("run.toml"), run.to_toml())
        .map_err(|e| DropbertError::io(&run.out_dir, e))?;

    let documents = read_documents(run)?;
    let tokenizer = tokenizer_for::<C>(run, &documents)?;
    let options = MlmDatasetOptions {
        seq_len: dims.seq_len,
        batch_size: dims.batch_size,
        validation_fraction: run.validation_fraction,
        seed: run.seed,
        masking: MlmMasking::for_seq_len(dims.seq_len),
    };
    let dataset = MlmDataset::from_documents(&documents, &tokenizer, options)?;
    drop(documents);
    eprintln!("{}", dataset.summary());

    let mut settings = BertSettings::default();
    let mut hf_config = HfBertConfig::from_dims(&dims, &settings);
    if let Some(dir) = init.or(resume) {
        hf_config = HfBertConfig::read(&dir.join("config.json"))?;
        hf_config.check_matches::<C>()?;
        settings = hf_config.settings();
    }
    settings.dropout = Dropout::new(run.hidden_dropout, run.attention_dropout);
    hf_config.hidden_dropout_prob = run.hidden_dropout as f64;
    hf_config.attention_probs_dropout_prob = run.attention_dropout as f64;

    let plan = DropPlan::for_training::<C>(
        run.token_drop.clone(),
        run.layer_drop,
        tokenizer.special_ids(),
    )?;
    let started = Instant::now();
    let mut program = TrainingProgram::<C>::compile(
        backend,
        &settings,
        run.optimizer_settings()?,
        run.seed,
        &plan,
    )?;
    let mut evaluation = EvaluationProgram::<C>::compile(backend, &settings)?;
    let parameters = program.parameters().to_vec();
    let mut position = DataPosition::default();
    match (resume, init) {
        (Some(dir), _) => {
            let saved = TrainingCheckpoint::load(dir)?;
            let state = saved.state;
            if state.dataset_fingerprint != dataset.fingerprint() {
                return Err(DropbertError::InvalidInput(format!(
                    "{}: the checkpoint was trained on other data (dataset fingerprint {:x}, now {:x}); resume with the same corpus, vocabulary and seed",
                    dir.display(),
                    state.dataset_fingerprint,
                    dataset.fingerprint()
                )));
            }
            let (weights, _) = load_weights(dir, &parameters, &settings, MissingPolicy::Refuse)?;
            program.resume(weights, &saved.optimizer, state.steps_taken)?;
            if let Some((settings, special)) = &plan.token_drop {
                let table = match saved.importance {
                    Some(table) if table.len() == dims.vocab_size => table,
                    Some(table) => {
                        return Err(DropbertError::InvalidInput(format!(
                            "{}: the importance table has {} entries, the vocabulary {}",
                            dir.display(),
                            table.len(),
                            dims.vocab_size
                        )))
                    }
                    None if state.steps_taken == 0 => {
                        settings.initial_table(dims.vocab_size, *special)
                    }
                    None => {
                        return Err(DropbertError::InvalidInput(format!(
                            "{}: a token-dropping run needs the checkpoint's token_importance.safetensors to resume",
                            dir.display()
                        )))
                    }
                };
                program.set_importance(table);
            }
            position = state.data_position;
        }
        (None, Some(dir)) => {
            let policy = MissingPolicy::Initialize {
                prefixes: &["cls.predictions."],
                seed: run.seed,
            };
            let (weights, report) = load_weights(dir, &parameters, &settings, policy)?;
            if !report.initialized.is_empty() {
                eprintln!(
                    "initialised {} parameters the checkpoint lacks",
                    report.initialized.len()
                );
            }
            program.start(weights);
        }
        (None, None) => {
            let mut rng = StdRng::seed_from_u64(run.seed);
            let weights = parameters
                .iter()
                .map(|p| initial_values(p, &settings, &mut rng))
                .collect();
            program.start(weights);
        }
    }
    if resume.is_none() {
        if let Some((settings, special)) = &plan.token_drop {
            program.set_importance(settings.initial_table(dims.vocab_size, *special));
        }
    }
    eprintln!(
        "{}: compiled training and evaluation programs on {backend} in {:.1?}",
        C::NAME,
        started.elapsed()
    );

    let mut metrics = MetricsLog::open(&run.out_dir.join("metrics.jsonl"))?;
    let validate = |evaluation: &mut EvaluationProgram<C>, program: &TrainingProgram<C>| {
        program.weights().and_then(|weights| {
            evaluation.evaluate(weights, dataset.validation_batches().take(run.eval_batches))
        })
    };
    let initial_validation = if resume.is_none() {
        let result = validate(&mut evaluation, &program)?;
        metrics.write(&json!({"event": "validation", "step": 0, "loss": result.loss, "accuracy": result.accuracy, "predictions": result.predictions}))?;
        eprintln!(
            "step 0: validation loss {:.4}, accuracy {:.4}",
            result.loss, result.accuracy
        );
        Some(result)
    } else {
        None
    };

    let save = |program: &TrainingProgram<C>, dir: &Path, position: DataPosition| -> Result<()> {
        TrainingCheckpoint::save(
            dir,
            &hf_config,
            &parameters,
            &program.weights()?,
            &tokenizer,
            &program.optimizer_state()?,
            program.importance().as_deref(),
            &TrainingState {
                configuration: C::NAME.to_string(),
                steps_taken: program.steps_taken(),
                data_position: position,
                dataset_fingerprint: dataset.fingerprint(),
                run: run.clone(),
            },
        )
    };

    let first_step = program.steps_taken();
    let progress = if show_progress {
        ProgressBar::new(run.steps.saturating_sub(first_step))
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("a valid template"),
    );
    let mut batches = dataset.train_batches(position);
    let mut last_validation = initial_validation;
    // Each step is queued before the last one's results are read, so that the device goes on to
    // it without waiting for the host; a step after which the run validates, saves or ends is
    // read before the next is queued, so that those see the weights of its end.
    let mut in_flight: Option<(QueuedStep, u32)> = None;
    let mut last_read = Instant::now();
    while program.steps_taken() < run.steps {
        let batch = batches.next().expect("training batches never end");
        let real_tokens: u32 = batch.tokens.attention_mask.iter().sum();
        let queued = program.queue_step(&batch)?;
        let taken = program.steps_taken();
        let last = taken == run.steps;
        let validates = last || (run.eval_every > 0 && taken % run.eval_every == 0);
        let saves = !last && run.save_every > 0 && taken % run.save_every == 0;
        let mut to_read: Vec<(QueuedStep, u32)> = in_flight.take().into_iter().collect();
        if validates || saves {
            to_read.push((queued, real_tokens));
        } else {
            in_flight = Some((queued, real_tokens));
        }
        for (queued, real_tokens) in to_read {
            let step = queued.finish();
            // From the last step's results to this one's: the time the run spent on the step.
            let seconds = last_read.elapsed().as_secs_f64();
            last_read = Instant::now();
            let tokens_per_second = real_tokens as f64 / seconds;
            metrics.write(&json!({
                "event": "train", "step": step.step + 1, "loss": step.loss,
                "learning_rate": step.learning_rate, "grad_norm": step.grad_norm,
                "tokens_per_second": tokens_per_second, "step_seconds": seconds,
                "flops": step.flops, "blocks_run": step.gates.iter().filter(|&&on| on).count(),
            }))?;
            progress.set_message(format!(
                "loss {:.3} | {:.0} tok/s",
                step.loss, tokens_per_second
            ));
            progress.inc(1);
            if !step.loss.is_finite() {
                let dir = run.out_dir.join(format!("stopped-at-step-{taken}"));
                save(&program, &dir, batches.position())?;
                progress.abandon();
                return Err(DropbertError::InvalidInput(format!(
                    "the loss became {} at step {}: stopped after step {taken}; the state is in {} (the last periodic checkpoint, if any, is the last good one)",
                    step.loss,
                    step.step + 1,
                    dir.display()
                )));
            }
        }
        if validates {
            let result = validate(&mut evaluation, &program)?;
            metrics.write(&json!({"event": "validation", "step": taken, "loss": result.loss, "accuracy": result.accuracy, "predictions": result.predictions}))?;
            progress.println(format!(
                "step {taken}: validation loss {:.4}, accuracy {:.4}",
                result.loss, result.accuracy
            ));
            last_validation = Some(result);
        }
        if saves {
            save(
                &program,
                &run.out_dir.join(format!("checkpoint-{taken}")),
                batches.position(),
            )?;
        }
        if validates || saves {
            last_read = Instant::now();
        }
    }
    progress.finish();
    let final_checkpoint = run.out_dir.join("final");
    save(&program, &final_checkpoint, batches.position())?;
    let final_validation = match last_validation {
        Some(result) => result,
        None => validate(&mut evaluation, &program)?,
    };
    Ok(PretrainOutcome {
        initial_validation,
        final_validation,
        final_checkpoint,
        steps_taken: program.steps_taken(),
    })
}

fn read_documents(run: &RunConfig) -> Result<Vec<Document>> {
    let mode = match run.documents.as_str() {
        "blocks" => DocumentMode::BlankLineBlocks,
        "lines" => DocumentMode::Lines,
        other => {
            return Err(DropbertError::InvalidInput(format!(
                "documents {other:?}: expected \"blocks\" or \"lines\""
            )))
        }
    };
    let (documents, report) = match &run.corpus {
        Some(path) => read_corpus(path, mode, CorpusLimits::default())?,
        None => {
            let mut reader = CorpusReader::new(mode, CorpusLimits::default());
            reader.add_reader(Path::new(WORDNET_SOURCE), WORDNET_CORPUS_GZ);
            reader.finish()
        }
    };
    eprintln!("{report}");
    Ok(documents)
}

fn tokenizer_for<C: BertConfig>(
    run: &RunConfig,
    documents: &[Document],
) -> Result<WordPieceTokenizer> {
    let vocab_size = C::DIMS.vocab_size;
    let tokenizer = match (&run.vocab, &run.corpus) {
        (Some(path), _) => WordPieceTokenizer::from_vocab_file(path, true)?,
        (None, None) => WordPieceTokenizer::from_tokens(
            WORDNET_VOCAB.lines().map(str::to_string).collect(),
            true,
        )?,
        (None, Some(_)) => {
            eprintln!("training a WordPiece vocabulary of {vocab_size} tokens on the corpus");
            let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
            train_wordpiece_vocab(&texts, &VocabTraining::new(vocab_size))?
        }
    };
    if tokenizer.vocab_size() != vocab_size {
        return Err(DropbertError::ConfigMismatch {
            key: "vocab_size",
            found: tokenizer.vocab_size().to_string(),
            compiled: vocab_size.to_string(),
            config: C::NAME,
        });
    }
    Ok(tokenizer)
}
