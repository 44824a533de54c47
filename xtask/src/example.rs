//! `cargo xtask example`: the main job until pretraining lands. Compiles a model binary
//! specialized to a bundled checkpoint (random BERT, 2 layers, hidden 32, vocab 512), encodes the
//! bundled text with `<binary> hidden`, and compares the result with what Hugging Face
//! `transformers` computed for the same checkpoint and text.

use std::error::Error;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::Command;

use safetensors::{Dtype, SafeTensors};

use crate::build_model;

const CASE: &str = "tests/fixtures/hf/tiny_post_ln";

pub fn run(repo: &Path) -> Result<(), Box<dyn Error>> {
    let case = repo.join(CASE);
    let seq = NonZeroUsize::new(16).unwrap();
    let batch = NonZeroUsize::new(4).unwrap();
    eprintln!(
        "building a model binary for {}",
        case.join("config.json").display()
    );
    let binary = build_model::run(&build_model::Args::for_config(
        case.join("config.json"),
        seq,
        batch,
    ))?;
    let out_dir = repo.join("target/example");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("hidden.safetensors");
    let status = Command::new(&binary)
        .arg("hidden")
        .arg("--checkpoint")
        .arg(&case)
        .arg("--input")
        .arg(case.join("input.txt"))
        .arg("--out")
        .arg(&out)
        .status()?;
    if !status.success() {
        return Err(format!("{} hidden failed ({status})", binary.display()).into());
    }
    let actual = std::fs::read(&out)?;
    let expected = std::fs::read(case.join("expected.safetensors"))?;
    let (actual, expected) = (
        SafeTensors::deserialize(&actual)?,
        SafeTensors::deserialize(&expected)?,
    );
    let ids_equal = actual.tensor("input_ids")?.data() == expected.tensor("input_ids")?.data();
    let (a, e) = (
        floats(&actual, "last_hidden_state")?,
        floats(&expected, "last_hidden_state")?,
    );
    let max_error = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    println!("binary:             {}", binary.display());
    println!("hidden states:      {} ({} values)", out.display(), a.len());
    println!("token ids equal to transformers' BertTokenizer: {ids_equal}");
    println!("max abs difference from transformers' BertModel: {max_error:.3e} (tolerance 1e-4)");
    if !ids_equal || max_error >= 1e-4 || a.len() != e.len() {
        return Err("the outputs differ from transformers'".into());
    }
    Ok(())
}

fn floats(file: &SafeTensors<'_>, name: &str) -> Result<Vec<f32>, Box<dyn Error>> {
    let tensor = file.tensor(name)?;
    if tensor.dtype() != Dtype::F32 {
        return Err(format!("{name} is {:?}, expected F32", tensor.dtype()).into());
    }
    Ok(tensor
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
