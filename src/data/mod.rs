//! Text to model inputs: corpora, WordPiece tokenization (and vocabulary training), packing,
//! MLM masking and batching.
pub mod batch;
pub mod corpus;
pub mod embedded;
pub mod masking;
pub mod mlm_batches;
pub mod packing;
pub mod tokenizer;
pub mod vocab_training;
