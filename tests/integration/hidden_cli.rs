//! The `hidden` subcommand end to end: text file in, safetensors out, equal to transformers'.

use std::path::Path;

use crate::common::{fixture, max_abs_diff, read_fixture};
use dropbert::hf::read_tensor_file;

dropbert::bert_config! {
    pub TinyPostLn {
        vocab: 512, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 3,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    /// Same as TinyPostLn but one layer short: the checkpoint must be refused.
    pub OneLayerShort {
        vocab: 512, hidden: 32, layers: 1, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 3,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dropbert-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `<binary> hidden` for configuration `C` on the fixture's own input lines.
fn run_hidden<C: dropbert::config::BertConfig>(
    checkpoint: &Path,
    out: &Path,
) -> dropbert::Result<()> {
    dropbert::cli::run::<C>([
        "bert".as_ref(),
        "hidden".as_ref(),
        "--checkpoint".as_ref(),
        checkpoint.as_os_str(),
        "--input".as_ref(),
        checkpoint.join("input.txt").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

#[test]
fn hidden_writes_ids_mask_and_states_equal_to_transformers() {
    let out = temp_dir("hidden").join("out.safetensors");
    let checkpoint = fixture("hf/tiny_post_ln");
    run_hidden::<TinyPostLn>(&checkpoint, &out).unwrap();
    let actual = read_tensor_file(&out).unwrap();
    let expected = read_fixture("hf/tiny_post_ln/expected.safetensors");
    // 7 lines in batches of 3: the last batch is padded with empty rows that must not leak out.
    assert_eq!(actual["input_ids"], expected["input_ids"]);
    assert_eq!(actual["attention_mask"], expected["attention_mask"]);
    assert_eq!(actual["last_hidden_state"].shape, vec![7, 16, 32]);
    let error = max_abs_diff(
        &actual["last_hidden_state"].to_f32(),
        &expected["last_hidden_state"].to_f32(),
    );
    assert!(error < 1e-4, "max abs error {error}");
}

#[test]
fn a_checkpoint_of_other_dimensions_is_refused_naming_both_values() {
    let checkpoint = fixture("hf/tiny_post_ln");
    let out = temp_dir("refused").join("out.safetensors");
    let error = run_hidden::<OneLayerShort>(&checkpoint, &out)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "checkpoint num_hidden_layers = 2 does not match the compiled configuration OneLayerShort (num_hidden_layers = 1)"
    );
    assert!(!out.exists());
}
