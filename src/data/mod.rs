//! Text to model inputs: WordPiece tokenization and batching (corpora and masking come later).
pub mod batch;
pub mod tokenizer;
