//! A real, independently trained checkpoint (all-MiniLM-L6-v2, fetched by
//! scripts/fetch_real_checkpoint.sh, which .ci/run calls) against transformers' outputs on it.

use std::path::PathBuf;

use crate::common::{fixture, ids, max_abs_diff, read_fixture};
use dropbert::{
    data::{batch::TokenBatch, tokenizer::WordPieceTokenizer},
    runtime::{hidden_state_program, Backend},
};

dropbert::bert_config! {
    pub MiniLmL6 {
        vocab: 30522, hidden: 384, layers: 6, heads: 12, intermediate: 1536,
        max_positions: 512, type_vocab: 2, seq: 32, batch: 3,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn checkpoint_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DROPBERT_REAL_CHECKPOINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/checkpoints/all-MiniLM-L6-v2")
        });
    if dir.join("model.safetensors").exists() {
        Some(dir)
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: .ci/run fetches it with scripts/fetch_real_checkpoint.sh",
            dir.display()
        );
    } else {
        eprintln!(
            "skipped: run scripts/fetch_real_checkpoint.sh to fetch {}",
            dir.display()
        );
        None
    }
}

#[test]
fn minilm_tokenization_and_hidden_states_match_transformers() {
    let Some(dir) = checkpoint_dir() else { return };
    let expected = read_fixture("minilm/expected.safetensors");
    let lines: Vec<String> = std::fs::read_to_string(fixture("minilm/input.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let tokenizer = WordPieceTokenizer::from_checkpoint_dir(&dir).unwrap();
    let (mut program, _) = hidden_state_program::<MiniLmL6>(&dir, Backend::Cpu).unwrap();

    let (batch_size, seq_len) = (3, 32);
    let encodings: Vec<_> = lines.iter().map(|l| tokenizer.encode(l, seq_len)).collect();
    let mut input_ids = Vec::new();
    let mut hidden = Vec::new();
    for chunk in encodings.chunks(batch_size) {
        let batch =
            TokenBatch::from_encodings(chunk, batch_size, seq_len, tokenizer.special_ids().pad);
        input_ids.extend_from_slice(&batch.input_ids[..batch.rows * seq_len]);
        hidden.extend_from_slice(&program.run(&batch)[..batch.rows * seq_len * 384]);
    }
    assert_eq!(input_ids, ids(&expected["input_ids"]));
    let error = max_abs_diff(&hidden, &expected["last_hidden_state"].to_f32());
    assert!(error < 1e-4, "max abs error {error}");
    eprintln!(
        "all-MiniLM-L6-v2: max abs error {error:e} over {} values",
        hidden.len()
    );
}
