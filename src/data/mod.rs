//! Text to model inputs: WordPiece tokenization (and, later, corpora, masking and batching).
pub mod tokenizer;
