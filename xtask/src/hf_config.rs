//! The shape-defining numbers of a Hugging Face BERT `config.json`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The keys of a Hugging Face BERT `config.json` that fix tensor shapes; all other keys are
/// ignored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// 2 where the file does not say, as in Hugging Face's `BertConfig`.
    pub type_vocab_size: usize,
}

/// Why a `config.json` could not be used; each displays as one line.
#[derive(Debug)]
pub enum HfConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Json {
        path: PathBuf,
        error: serde_json::Error,
    },
    NotAnObject {
        path: PathBuf,
    },
    MissingKey {
        path: PathBuf,
        key: &'static str,
    },
    InvalidValue {
        path: PathBuf,
        key: &'static str,
        value: Value,
    },
}

impl fmt::Display for HfConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::Json { path, error } => {
                write!(f, "{} is not valid JSON: {error}", path.display())
            }
            Self::NotAnObject { path } => write!(f, "{} is not a JSON object", path.display()),
            Self::MissingKey { path, key } => write!(f, "{} has no `{key}` key", path.display()),
            Self::InvalidValue { path, key, value } => write!(
                f,
                "`{key}` in {} must be a positive integer, not {value}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for HfConfigError {}

impl HfConfig {
    /// Reads and parses the `config.json` at `path`.
    pub fn load(path: &Path) -> Result<Self, HfConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| HfConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a `config.json`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, HfConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|error| HfConfigError::Json {
            path: path.to_owned(),
            error,
        })?;
        let object = value
            .as_object()
            .ok_or_else(|| HfConfigError::NotAnObject {
                path: path.to_owned(),
            })?;
        let keys = Keys { object, path };
        Ok(Self {
            vocab_size: keys.required("vocab_size")?,
            hidden_size: keys.required("hidden_size")?,
            num_hidden_layers: keys.required("num_hidden_layers")?,
            num_attention_heads: keys.required("num_attention_heads")?,
            intermediate_size: keys.required("intermediate_size")?,
            max_position_embeddings: keys.required("max_position_embeddings")?,
            type_vocab_size: keys.optional("type_vocab_size")?.unwrap_or(2),
        })
    }
}

/// The top-level keys of a parsed `config.json`.
struct Keys<'a> {
    object: &'a Map<String, Value>,
    path: &'a Path,
}

impl Keys<'_> {
    fn required(&self, key: &'static str) -> Result<usize, HfConfigError> {
        self.optional(key)?
            .ok_or_else(|| HfConfigError::MissingKey {
                path: self.path.to_owned(),
                key,
            })
    }

    /// The key's value; `None` where it is absent or `null`.
    fn optional(&self, key: &'static str) -> Result<Option<usize>, HfConfigError> {
        let value = match self.object.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(HfConfigError::InvalidValue {
                path: self.path.to_owned(),
                key,
                value: value.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT_BASE: &str = r#"{
        "architectures": ["BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 768,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "pad_token_id": 0,
        "type_vocab_size": 2,
        "vocab_size": 30522
    }"#;

    fn parse(text: &str) -> Result<HfConfig, HfConfigError> {
        HfConfig::parse(text, Path::new("models/config.json"))
    }

    /// BERT-base's config with `key` removed or replaced by `value`.
    fn base_with(key: &str, value: Option<Value>) -> String {
        let mut object: Map<String, Value> = serde_json::from_str(BERT_BASE).unwrap();
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        serde_json::to_string(&object).unwrap()
    }

    #[test]
    fn reads_the_shape_keys_and_ignores_the_others() {
        assert_eq!(
            parse(BERT_BASE).unwrap(),
            HfConfig {
                vocab_size: 30522,
                hidden_size: 768,
                num_hidden_layers: 12,
                num_attention_heads: 12,
                intermediate_size: 3072,
                max_position_embeddings: 512,
                type_vocab_size: 2,
            }
        );
    }

    #[test]
    fn type_vocab_size_defaults_to_two() {
        let config = parse(&base_with("type_vocab_size", None)).unwrap();
        assert_eq!(config.type_vocab_size, 2);
        let config = parse(&base_with("type_vocab_size", Some(Value::Null))).unwrap();
        assert_eq!(config.type_vocab_size, 2);
        let config = parse(&base_with("type_vocab_size", Some(1.into()))).unwrap();
        assert_eq!(config.type_vocab_size, 1);
    }

    #[test]
    fn a_missing_key_is_named() {
        let error = parse(&base_with("num_attention_heads", None)).unwrap_err();
        assert!(matches!(
            error,
            HfConfigError::MissingKey {
                key: "num_attention_heads",
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "models/config.json has no `num_attention_heads` key"
        );
    }

    #[test]
    fn values_must_be_positive_integers() {
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-12),
            serde_json::json!(12.5),
            serde_json::json!("12"),
            serde_json::json!([12]),
        ] {
            let error = parse(&base_with("hidden_size", Some(bad.clone()))).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "`hidden_size` in models/config.json must be a positive integer, not {bad}"
                )
            );
        }
        let error = parse(&base_with("type_vocab_size", Some(0.into()))).unwrap_err();
        assert!(matches!(
            error,
            HfConfigError::InvalidValue {
                key: "type_vocab_size",
                ..
            }
        ));
    }

    #[test]
    fn the_file_must_be_a_json_object() {
        let error = parse("{\"hidden_size\": 768,").unwrap_err();
        assert!(matches!(error, HfConfigError::Json { .. }));
        assert!(error
            .to_string()
            .starts_with("models/config.json is not valid JSON: "));
        let error = parse("[768]").unwrap_err();
        assert_eq!(error.to_string(), "models/config.json is not a JSON object");
    }

    #[test]
    fn every_error_is_one_line() {
        let errors = [
            parse("{").unwrap_err(),
            parse("\n\n[1,\n2]").unwrap_err(),
            parse(&base_with("vocab_size", None)).unwrap_err(),
            parse(&base_with(
                "vocab_size",
                Some(serde_json::json!({"a": [1, 2]})),
            ))
            .unwrap_err(),
            HfConfig::load(Path::new("/nonexistent/dropbert/config.json")).unwrap_err(),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(!text.contains('\n'), "{text:?}");
        }
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let error = HfConfig::load(Path::new("/nonexistent/dropbert/config.json")).unwrap_err();
        assert!(matches!(error, HfConfigError::Read { .. }));
        assert!(error
            .to_string()
            .starts_with("cannot read /nonexistent/dropbert/config.json: "));
    }
}
