use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use clap::Args;

use crate::{
    config::BertConfig,
    data::{batch::TokenBatch, tokenizer::WordPieceTokenizer},
    hf::{write_tensor_file, TensorData},
    runtime::{hidden_state_program, Backend, MatmulPrecision},
    DropbertError, Result,
};

#[derive(Debug, Args)]
pub struct HiddenArgs {
    /// Hugging Face checkpoint folder: config.json, model.safetensors, vocab.txt.
    #[arg(long)]
    checkpoint: PathBuf,
    /// UTF-8 text file, one text per line.
    #[arg(long)]
    input: PathBuf,
    /// Output safetensors file: input_ids, attention_mask, last_hidden_state.
    #[arg(long)]
    out: PathBuf,
    /// cpu or cuda (default: cuda where the binary was built with it).
    #[arg(long)]
    backend: Option<Backend>,
    /// Matrix products on the GPU: fp32, or on the tensor cores with tf32 or bf16 inputs
    /// (float32 weights, activations and accumulation in every mode).
    #[arg(long, default_value_t = MatmulPrecision::Fp32)]
    matmul: MatmulPrecision,
}

pub fn run<C: BertConfig>(args: &HiddenArgs) -> Result<()> {
    let dims = C::DIMS;
    let backend = args.backend.unwrap_or_else(Backend::best_available);
    args.matmul.select_for(backend)?;
    let tokenizer = WordPieceTokenizer::from_checkpoint_dir(&args.checkpoint)?;
    let lines = read_lines(&args.input)?;
    let started = Instant::now();
    let (mut program, report) = hidden_state_program::<C>(&args.checkpoint, backend)?;
    if !report.unused.is_empty() {
        eprintln!(
            "note: {} checkpoint tensors not used by the encoder (e.g. {})",
            report.unused.len(),
            report.unused[0]
        );
    }
    let compiled = started.elapsed();

    let encodings: Vec<_> = lines
        .iter()
        .map(|line| tokenizer.encode(line, dims.seq_len))
        .collect();
    let row_len = dims.seq_len * dims.hidden_size;
    let mut last_hidden_state = Vec::with_capacity(lines.len() * row_len);
    let mut input_ids = Vec::with_capacity(lines.len() * dims.seq_len);
    let mut attention_mask = Vec::with_capacity(lines.len() * dims.seq_len);
    for chunk in encodings.chunks(dims.batch_size) {
        let batch = TokenBatch::from_encodings(
            chunk,
            dims.batch_size,
            dims.seq_len,
            tokenizer.special_ids().pad,
        );
        let hidden = program.run(&batch);
        last_hidden_state.extend_from_slice(&hidden[..batch.rows * row_len]);
        let real = batch.rows * dims.seq_len;
        input_ids.extend(batch.input_ids[..real].iter().map(|&id| id as i64));
        attention_mask.extend(batch.attention_mask[..real].iter().map(|&m| m as i64));
    }

    let rows = lines.len();
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "input_ids".to_string(),
        TensorData::i64(vec![rows, dims.seq_len], input_ids),
    );
    tensors.insert(
        "attention_mask".to_string(),
        TensorData::i64(vec![rows, dims.seq_len], attention_mask),
    );
    tensors.insert(
        "last_hidden_state".to_string(),
        TensorData::f32(
            vec![rows, dims.seq_len, dims.hidden_size],
            last_hidden_state,
        ),
    );
    write_tensor_file(&args.out, &tensors)?;
    eprintln!(
        "{}: encoded {rows} lines in {} batches of {} x {} on {backend} (compile {:.2?}, total {:.2?}) -> {}",
        C::NAME,
        rows.div_ceil(dims.batch_size),
        dims.batch_size,
        dims.seq_len,
        compiled,
        started.elapsed(),
        args.out.display()
    );
    Ok(())
}

/// The lines of a UTF-8 file (a final newline ends the last line rather than starting another).
fn read_lines(path: &PathBuf) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| DropbertError::io(path, e))?;
    let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if text.is_empty() && bytes.is_empty() {
        return Ok(Vec::new());
    }
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(index, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8(line.to_vec()).map_err(|_| {
                DropbertError::InvalidInput(format!(
                    "{}:{}: not valid UTF-8",
                    path.display(),
                    index + 1
                ))
            })
        })
        .collect()
}
