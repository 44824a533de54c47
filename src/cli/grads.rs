use std::{collections::BTreeMap, path::PathBuf};

use clap::Args;

use crate::{
    config::BertConfig,
    data::batch::TokenBatch,
    hf::{read_tensor_file, write_tensor_file, MissingPolicy, TensorData},
    runtime::{Backend, GradientProgram},
    DropbertError, Result,
};

#[derive(Debug, Args)]
pub struct GradsArgs {
    /// Hugging Face checkpoint folder: config.json, model.safetensors.
    #[arg(long)]
    checkpoint: PathBuf,
    /// safetensors file with input_ids, token_type_ids, attention_mask and labels (int64,
    /// [batch, seq]; label -100 = not predicted).
    #[arg(long)]
    batch: PathBuf,
    /// Output safetensors file: loss and the gradient of every parameter under its
    /// BertForMaskedLM name.
    #[arg(long)]
    out: PathBuf,
    /// cpu or cuda (default: cuda where the binary was built with it).
    #[arg(long)]
    backend: Option<Backend>,
    /// Seed of the dropout masks (dropout follows the checkpoint's config.json rates).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run<C: BertConfig>(args: &GradsArgs) -> Result<()> {
    let dims = C::DIMS;
    let backend = args.backend.unwrap_or_else(Backend::best_available);
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

    let (mut program, _) =
        GradientProgram::<C>::from_checkpoint(&args.checkpoint, backend, MissingPolicy::Refuse)?;
    program.set_dropout_position(args.seed, 0);
    let outputs = program.run(&batch, &labels)?;
    let mut written = BTreeMap::new();
    written.insert(
        "loss".to_string(),
        TensorData::f32(vec![], vec![outputs.loss]),
    );
    for (parameter, gradient) in program.parameters().into_iter().zip(outputs.gradients) {
        written.insert(parameter.name, TensorData::f32(parameter.shape, gradient));
    }
    write_tensor_file(&args.out, &written)?;
    eprintln!(
        "{}: loss {:.6} over {} predicted positions, {} gradients -> {}",
        C::NAME,
        outputs.loss,
        labels.iter().filter(|&&l| l != -100).count(),
        written.len() - 1,
        args.out.display()
    );
    Ok(())
}
