//! WordPiece tokenization identical to Hugging Face `BertTokenizer`.
