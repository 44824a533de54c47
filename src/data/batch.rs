use super::tokenizer::Encoding;

/// A full batch of encoded sequences, `[batch, seq]` each, row-major. Rows past `rows` are
/// padding rows (all [PAD], mask 0) that fill the compiled batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub rows: usize,
}

impl TokenBatch {
    /// Stacks `encodings` (at most `batch_size`, each `seq_len` long) and pads with empty rows.
    pub fn from_encodings(
        encodings: &[Encoding],
        batch_size: usize,
        seq_len: usize,
        pad_id: u32,
    ) -> Self {
        assert!(
            encodings.len() <= batch_size,
            "more sequences than the batch holds"
        );
        let mut batch = Self {
            input_ids: Vec::with_capacity(batch_size * seq_len),
            token_type_ids: Vec::with_capacity(batch_size * seq_len),
            attention_mask: Vec::with_capacity(batch_size * seq_len),
            rows: encodings.len(),
        };
        for encoding in encodings {
            assert_eq!(
                encoding.input_ids.len(),
                seq_len,
                "encoding of the wrong length"
            );
            batch.input_ids.extend(&encoding.input_ids);
            batch.token_type_ids.extend(&encoding.token_type_ids);
            batch.attention_mask.extend(&encoding.attention_mask);
        }
        let padding = (batch_size - encodings.len()) * seq_len;
        batch.input_ids.extend(std::iter::repeat_n(pad_id, padding));
        batch.token_type_ids.extend(std::iter::repeat_n(0, padding));
        batch.attention_mask.extend(std::iter::repeat_n(0, padding));
        batch
    }
}
