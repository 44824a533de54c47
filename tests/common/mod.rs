//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::{collections::BTreeMap, path::PathBuf};

use dropbert::{
    config::BertConfig,
    data::batch::TokenBatch,
    hf::{read_tensor_file, TensorData},
};

// The dimensions of the fixture checkpoints tests/fixtures/hf/{tiny_post_ln,narrow_3layer}
// (and their copies under tests/fixtures/grads/), compiled at the batch sizes the tests use.
dropbert::bert_config! {
    pub TinyPostLn {
        vocab: 512, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub Narrow3Layer {
        vocab: 512, hidden: 48, layers: 3, heads: 4, intermediate: 80,
        max_positions: 40, type_vocab: 3, seq: 24, batch: 3,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

// The checkpoints of tests/fixtures/drops/ (scripts/make_drop_fixtures.py).
dropbert::bert_config! {
    pub TokenDropPostLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: { layer: 1, kept: 8 }, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub TokenDropLastSplit {
        vocab: 512, hidden: 32, layers: 3, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PostLn, token_drop: { layer: 1, kept: 5 }, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub LayerDropPreLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

dropbert::bert_config! {
    pub BothPreLn {
        vocab: 512, hidden: 32, layers: 4, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 4,
        layout: PreLn, token_drop: { layer: 1, kept: 8 }, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

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
