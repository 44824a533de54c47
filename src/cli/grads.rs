use std::{collections::BTreeMap, path::PathBuf};

use clap::Args;

use crate::{
    config::BertConfig,
    data::{
        batch::TokenBatch,
        tokenizer::{SpecialTokenIds, WordPieceTokenizer},
    },
    drop::{DropPlan, LayerDropSchedule, TokenDropSettings},
    hf::{read_tensor_file, write_tensor_file, MissingPolicy, TensorData},
    runtime::{Backend, GradientProgram, MatmulPrecision},
    DropbertError, Result,
};

#[derive(Debug, Args)]
pub struct GradsArgs {
    /// Hugging Face checkpoint folder: config.json, model.safetensors.
    #[arg(long)]
    checkpoint: PathBuf,
    /// safetensors file with input_ids, token_type_ids, attention_mask and labels (int64,
    /// [batch, seq]; label -100 = not predicted). Token dropping: optional token_importance
    /// (float32, [vocab]; default: the initial table). Layer dropping: optional layer_gates
    /// (float32, [layers], 0 or 1; default: drawn with --seed) and step (int64; default 0).
    #[arg(long)]
    batch: PathBuf,
    /// Output safetensors file: loss and the gradient of every parameter under its
    /// BertForMaskedLM name; under token dropping also token_importance (the updated table)
    /// and kept_positions (int64, [batch, kept]).
    #[arg(long)]
    out: PathBuf,
    /// cpu or cuda (default: cuda where the binary was built with it).
    #[arg(long)]
    backend: Option<Backend>,
    /// Matrix products on the GPU: fp32, or on the tensor cores with tf32 or bf16 inputs
    /// (float32 weights, activations and accumulation in every mode).
    #[arg(long, default_value_t = MatmulPrecision::Fp32)]
    matmul: MatmulPrecision,
    /// Seed of the dropout masks and layer gates (dropout follows the checkpoint's config.json
    /// rates).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Token dropping: "importance" (default), "random" or "mixed".
    #[arg(long)]
    selection: Option<crate::drop::Selection>,
    /// Token dropping: weight of the old value in the importance running average.
    #[arg(long)]
    beta: Option<f32>,
    /// Layer dropping: the schedule's theta_bar (default: the compiled configuration's).
    #[arg(long)]
    theta_bar: Option<f32>,
    /// Layer dropping: the schedule's gamma (default: the compiled configuration's).
    #[arg(long)]
    gamma: Option<f32>,
}

pub fn run<C: BertConfig>(args: &GradsArgs) -> Result<()> {
    let dims = C::DIMS;
    let backend = args.backend.unwrap_or_else(Backend::best_available);
    args.matmul.select_for(backend)?;
    let tensors = read_tensor_file(&args.batch)?;
    let expected_shape = vec![dims.batch_size, dims.seq_len];
    let column = |name: &str| -> Result<Vec<i64>> {
        let tensor = tensors
            .get(name)
            .ok_or_else(|| DropbertError::MissingTensor {
                path: args.batch.clone(),
                name: name.to_string(),
            })?;
        if tensor.shape != expected_shape {
            return Err(DropbertError::TensorShape {
                path: args.batch.clone(),
                name: name.to_string(),
                found: tensor.shape.clone(),
                expected: expected_shape.clone(),
            });
        }
        Ok(tensor.to_f32().iter().map(|&v| v as i64).collect())
    };
    let ids = |name: &str, limit: usize| -> Result<Vec<u32>> {
        column(name)?
            .into_iter()
            .map(|id| {
                u32::try_from(id)
                    .ok()
                    .filter(|&id| (id as usize) < limit)
                    .ok_or_else(|| {
                        DropbertError::InvalidInput(format!(
                            "{}: {name} holds {id}, outside 0..{limit}",
                            args.batch.display()
                        ))
                    })
            })
            .collect()
    };
    let batch = TokenBatch {
        input_ids: ids("input_ids", dims.vocab_size)?,
        token_type_ids: ids("token_type_ids", dims.type_vocab_size)?,
        attention_mask: ids("attention_mask", 2)?,
        rows: dims.batch_size,
    };
    let labels = column("labels")?;
    if let Some(bad) = labels
        .iter()
        .find(|&&l| l != -100 && !(0..dims.vocab_size as i64).contains(&l))
    {
        return Err(DropbertError::InvalidInput(format!(
            "{}: labels holds {bad}: expected -100 or an id in 0..{}",
            args.batch.display(),
            dims.vocab_size
        )));
    }

    let token_drop = C::DIMS.token_drop.map(|_| {
        let defaults = TokenDropSettings::default();
        TokenDropSettings {
            selection: args.selection.unwrap_or(defaults.selection),
            beta: args.beta.unwrap_or(defaults.beta),
            ..defaults
        }
    });
    // Token dropping keeps special tokens first: it needs the checkpoint's vocabulary.
    let special = match token_drop {
        Some(_) => WordPieceTokenizer::from_checkpoint_dir(&args.checkpoint)?.special_ids(),
        None => SpecialTokenIds::BERT_UNCASED,
    };
    let layer_drop = C::DIMS.layer_drop.map(|compiled| LayerDropSchedule {
        theta_bar: args.theta_bar.unwrap_or(compiled.theta_bar),
        gamma: args.gamma.unwrap_or(compiled.gamma),
    });
    let plan = DropPlan::for_training::<C>(token_drop, layer_drop, special)?;

    let (mut program, _) = GradientProgram::<C>::from_checkpoint(
        &args.checkpoint,
        backend,
        MissingPolicy::Refuse,
        &plan,
    )?;
    program.set_dropout_position(args.seed, 0);
    let optional = |name: &str, shape: Vec<usize>| -> Result<Option<Vec<f32>>> {
        match tensors.get(name) {
            None => Ok(None),
            Some(tensor) if tensor.shape == shape => Ok(Some(tensor.to_f32())),
            Some(tensor) => Err(DropbertError::TensorShape {
                path: args.batch.clone(),
                name: name.to_string(),
                found: tensor.shape.clone(),
                expected: shape,
            }),
        }
    };
    if let Some((settings, special)) = &plan.token_drop {
        let table = optional("token_importance", vec![dims.vocab_size])?
            .unwrap_or_else(|| settings.initial_table(dims.vocab_size, *special));
        program.set_importance(table);
    }
    if let Some(schedule) = &plan.layer_drop {
        let step = optional("step", vec![])?.map_or(0, |step| step[0] as u64);
        let gates = match optional("layer_gates", vec![dims.num_layers])? {
            Some(gates) => schedule.fixed_gates(step, gates.iter().map(|&g| g != 0.0).collect()),
            None => schedule.sample(args.seed, step, dims.num_layers),
        };
        program.set_gates(&gates);
    } else if tensors.contains_key("layer_gates") {
        return Err(DropbertError::InvalidInput(format!(
            "{}: the batch has layer_gates, but {} was compiled without layer dropping",
            args.batch.display(),
            C::NAME
        )));
    }
    let outputs = program.run(&batch, &labels)?;
    let mut written = BTreeMap::new();
    written.insert(
        "loss".to_string(),
        TensorData::f32(vec![], vec![outputs.loss]),
    );
    for (parameter, gradient) in program.parameters().into_iter().zip(outputs.gradients) {
        written.insert(parameter.name, TensorData::f32(parameter.shape, gradient));
    }
    if let Some(table) = outputs.importance {
        written.insert(
            "token_importance".to_string(),
            TensorData::f32(vec![dims.vocab_size], table),
        );
        let kept = outputs
            .kept_positions
            .iter()
            .map(|&flat| (flat % dims.seq_len) as i64)
            .collect();
        written.insert(
            "kept_positions".to_string(),
            TensorData::i64(vec![dims.batch_size, dims.kept_tokens()], kept),
        );
    }
    write_tensor_file(&args.out, &written)?;
    eprintln!(
        "{}: loss {:.6} over {} predicted positions, {} gradients -> {}",
        C::NAME,
        outputs.loss,
        labels.iter().filter(|&&l| l != -100).count(),
        program.parameters().len(),
        args.out.display()
    );
    Ok(())
}
