use rand::{rngs::StdRng, seq::index::sample, Rng, SeedableRng};

use crate::{
    config::BertDims,
    data::{batch::TokenBatch, mlm_batches::MlmBatch},
};

/// A batch of random ids with every position real and `floor(0.15 * seq)` positions of each
/// sequence predicted (at least one): what benchmarks feed, here and in the PyTorch scripts.
pub fn synthetic_batch(dims: &BertDims, seed: u64) -> MlmBatch {
    let (rows, seq) = (dims.batch_size, dims.seq_len);
    let mut rng = StdRng::seed_from_u64(seed);
    // Above the special tokens of BERT's vocabulary, where it is big enough to have them.
    let first_word = if dims.vocab_size > 1000 { 1000 } else { 5 };
    let input_ids: Vec<u32> = (0..rows * seq)
        .map(|_| rng.gen_range(first_word..dims.vocab_size as u32))
        .collect();
    let predicted_per_row = (seq * 15 / 100).max(1);
    let mut labels = vec![-100i64; rows * seq];
    for row in 0..rows {
        for position in sample(&mut rng, seq, predicted_per_row) {
            let index = row * seq + position;
            labels[index] = input_ids[index] as i64;
        }
    }
    MlmBatch {
        tokens: TokenBatch {
            input_ids,
            token_type_ids: vec![0; rows * seq],
            attention_mask: vec![1; rows * seq],
            rows,
        },
        labels,
    }
}
