use std::path::PathBuf;

use clap::Args;

use crate::{
    config::BertConfig,
    runtime::{Backend, MatmulPrecision},
    train::{pretrain, RunConfig, TrainingCheckpoint},
    Result,
};

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// TOML run configuration; flags below override its keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Text file or folder (default: the embedded WordNet corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// vocab.txt (default: the embedded corpus' vocabulary, or one trained on --corpus).
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// "blocks" (blank-line separated documents) or "lines" (one document per line).
    #[arg(long)]
    documents: Option<String>,
    #[arg(long)]
    steps: Option<u64>,
    /// Output folder: metrics.jsonl, run.toml, checkpoints.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// "adamw" or "lamb".
    #[arg(long)]
    optimizer: Option<String>,
    #[arg(long)]
    eval_every: Option<u64>,
    #[arg(long)]
    save_every: Option<u64>,
    /// Start from this Hugging Face checkpoint instead of random weights.
    #[arg(long)]
    init_checkpoint: Option<PathBuf>,
    /// Continue the training checkpoint in this folder exactly where it stopped (its run
    /// configuration applies; only --steps and --out may change).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// cpu or cuda (default: cuda where the binary was built with it).
    #[arg(long)]
    backend: Option<Backend>,
    /// Matrix products on the GPU: fp32, or on the tensor cores with tf32 or bf16 inputs
    /// (float32 weights, activations and accumulation in every mode).
    #[arg(long, default_value_t = MatmulPrecision::Fp32)]
    matmul: MatmulPrecision,
    /// No progress bar (metrics still go to metrics.jsonl).
    #[arg(long)]
    quiet: bool,
}

pub fn run<C: BertConfig>(args: &PretrainArgs) -> Result<()> {
    let mut run = match (&args.resume, &args.config) {
        (Some(dir), _) => TrainingCheckpoint::load(dir)?.state.run,
        (None, Some(path)) => RunConfig::read(path)?,
        (None, None) => RunConfig::default(),
    };
    if args.resume.is_none() {
        let overrides = &args;
        macro_rules! set {
            ($field:ident, $value:expr) => {
                if let Some(value) = $value.clone() {
                    run.$field = value;
                }
            };
        }
        set!(documents, overrides.documents);
        set!(seed, overrides.seed);
        set!(learning_rate, overrides.lr);
        set!(warmup_steps, overrides.warmup_steps);
        set!(optimizer, overrides.optimizer);
        set!(eval_every, overrides.eval_every);
        set!(save_every, overrides.save_every);
        if args.corpus.is_some() {
            run.corpus = args.corpus.clone();
        }
        if args.vocab.is_some() {
            run.vocab = args.vocab.clone();
        }
    }
    if let Some(steps) = args.steps {
        run.steps = steps;
    }
    if let Some(out) = &args.out {
        run.out_dir = out.clone();
    }
    let backend = args.backend.unwrap_or_else(Backend::best_available);
    args.matmul.select_for(backend)?;
    let outcome = pretrain::<C>(
        &run,
        args.init_checkpoint.as_deref(),
        args.resume.as_deref(),
        backend,
        !args.quiet,
    )?;
    if let Some(initial) = outcome.initial_validation {
        println!(
            "validation MLM loss: {:.4} before training (ln(vocab) = {:.4}), {:.4} after {} steps",
            initial.loss,
            (C::DIMS.vocab_size as f64).ln(),
            outcome.final_validation.loss,
            outcome.steps_taken
        );
    } else {
        println!(
            "validation MLM loss {:.4} after {} steps",
            outcome.final_validation.loss, outcome.steps_taken
        );
    }
    println!(
        "masked-token accuracy {:.4}; metrics in {}; checkpoint in {}",
        outcome.final_validation.accuracy,
        run.out_dir.join("metrics.jsonl").display(),
        outcome.final_checkpoint.display()
    );
    Ok(())
}
