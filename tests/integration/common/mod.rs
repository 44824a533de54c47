//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{collections::BTreeMap, path::PathBuf};

use dropbert::{
    config::BertConfig,
    data::{batch::TokenBatch, tokenizer::SpecialTokenIds},
    hf::{read_tensor_file, TensorData},
};

include!("fixture_configs.rs");

/// Special ids 0..=4 in BERT order, then ordinary ids.
pub const SPECIAL: SpecialTokenIds = SpecialTokenIds {
    pad: 0,
    unk: 1,
    cls: 2,
    sep: 3,
    mask: 4,
};

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

pub fn read_fixture(path: &str) -> BTreeMap<String, TensorData> {
    read_tensor_file(&fixture(path)).unwrap()
}

pub fn ids(tensor: &TensorData) -> Vec<u32> {
    tensor.to_f32().iter().map(|&v| v as u32).collect()
}

/// The rows `[start, start + batch)` of `[rows, seq]` reference inputs as a full batch.
pub fn reference_batch<C: BertConfig>(
    expected: &BTreeMap<String, TensorData>,
    start: usize,
) -> TokenBatch {
    let dims = C::DIMS;
    let rows = expected["input_ids"].shape[0];
    let end = (start + dims.batch_size).min(rows);
    let slice = |name: &str| {
        let mut values = ids(&expected[name])[start * dims.seq_len..end * dims.seq_len].to_vec();
        values.resize(dims.batch_size * dims.seq_len, 0);
        values
    };
    TokenBatch {
        input_ids: slice("input_ids"),
        token_type_ids: slice("token_type_ids"),
        attention_mask: slice("attention_mask"),
        rows: end - start,
    }
}

/// Largest absolute difference, asserting equal lengths.
pub fn max_abs_diff(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Largest difference relative to the tensor's largest reference value; tensors whose reference
/// is all rounding noise (the attention key bias, whose true gradient is 0) are compared against
/// the gradients' overall scale instead.
pub fn relative_error(actual: &[f32], expected: &[f32], scale_floor: f32) -> f32 {
    assert_eq!(actual.len(), expected.len(), "lengths differ");
    let largest = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(actual.iter().all(|v| v.is_finite()), "non-finite value");
    let difference = actual
        .iter()
        .zip(expected)
        .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
    difference / largest.max(scale_floor)
}
