//! The embedded default corpus: WordNet 3.0's glosses and example sentences with a WordPiece
//! vocabulary of 8192 tokens (data/wordnet/README.md says where they come from), compiled into
//! every binary so that pretraining works with no data at hand.

/// `data/wordnet/corpus.txt.gz`: documents separated by blank lines.
pub const WORDNET_CORPUS_GZ: &[u8] = include_bytes!("../../data/wordnet/corpus.txt.gz");

/// `data/wordnet/vocab.txt`.
pub const WORDNET_VOCAB: &str = include_str!("../../data/wordnet/vocab.txt");

/// The name runs and logs give the embedded corpus.
pub const WORDNET_SOURCE: &str = "embedded:wordnet-3.0";
