//! Export: a loaded checkpoint saved by dropbert loads back with the same parameters and outputs.

use crate::common::{fixture, read_fixture, reference_batch};
use dropbert::{
    data::tokenizer::WordPieceTokenizer,
    hf::{read_tensor_file, save_checkpoint, HfBertConfig, MissingPolicy},
    nn::{BertForMaskedLM, Parameters},
    runtime::{Backend, ForwardProgram},
};

dropbert::bert_config! {
    pub TinyPostLn {
        vocab: 512, hidden: 32, layers: 2, heads: 2, intermediate: 64,
        max_positions: 64, type_vocab: 2, seq: 16, batch: 7,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

type MaskedLmProgram = ForwardProgram<
    TinyPostLn,
    (
        luminal::prelude::Const<7>,
        luminal::prelude::Const<16>,
        luminal::prelude::Const<512>,
    ),
>;

fn masked_lm(dir: &std::path::Path, policy: MissingPolicy<'_>) -> MaskedLmProgram {
    ForwardProgram::from_checkpoint(dir, Backend::Cpu, policy, |graph, inputs, settings| {
        let model = BertForMaskedLM::<TinyPostLn>::new(graph, settings);
        (model.forward(inputs), model.parameters(""))
    })
    .unwrap()
    .0
}

#[test]
fn saved_checkpoint_reloads_with_identical_tensors_and_logits() {
    let source = fixture("hf/tiny_post_ln");
    let expected = read_fixture("hf/tiny_post_ln/expected.safetensors");
    let batch = reference_batch::<TinyPostLn>(&expected, 0);
    let mut original = masked_lm(&source, MissingPolicy::Refuse);
    let original_logits = original.run(&batch);

    let exported = std::env::temp_dir().join(format!("dropbert-export-{}", std::process::id()));
    let config = HfBertConfig::read(&source.join("config.json")).unwrap();
    let tokenizer = WordPieceTokenizer::from_checkpoint_dir(&source).unwrap();
    let (values, _) = dropbert::hf::load_weights(
        &source,
        original.parameters(),
        &config.settings(),
        MissingPolicy::Refuse,
    )
    .unwrap();
    save_checkpoint(
        &exported,
        &config,
        original.parameters(),
        &values,
        &tokenizer,
    )
    .unwrap();

    // Same tensors under BertForMaskedLM names, and no tied duplicate of the word embeddings.
    let before = read_tensor_file(&source.join("model.safetensors")).unwrap();
    let after = read_tensor_file(&exported.join("model.safetensors")).unwrap();
    assert_eq!(before, after);
    assert_eq!(
        std::fs::read_to_string(exported.join("vocab.txt")).unwrap(),
        std::fs::read_to_string(source.join("vocab.txt")).unwrap()
    );

    let mut reloaded = masked_lm(&exported, MissingPolicy::Refuse);
    assert_eq!(reloaded.run(&batch), original_logits);
    std::fs::remove_dir_all(&exported).unwrap();
}

#[test]
fn a_base_model_checkpoint_gets_a_fresh_seeded_mlm_head_only_when_allowed() {
    let source = fixture("hf/bertmodel_names");
    let config = HfBertConfig::read(&source.join("config.json")).unwrap();
    dropbert::bert_config! {
        pub Small {
            vocab: 512, hidden: 24, layers: 1, heads: 3, intermediate: 40,
            max_positions: 32, type_vocab: 2, seq: 12, batch: 1,
            layout: PostLn, token_drop: off, layer_drop: off,
        }
    }
    let mut graph = luminal::prelude::Graph::new();
    let model = BertForMaskedLM::<Small>::new(&mut graph, &config.settings());
    let parameters = model.parameters("");
    let refused = dropbert::hf::load_weights(
        &source,
        &parameters,
        &config.settings(),
        MissingPolicy::Refuse,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("cls.predictions."), "{refused}");
    let policy = MissingPolicy::Initialize {
        prefixes: &["cls.predictions."],
        seed: 7,
    };
    let (first, report) =
        dropbert::hf::load_weights(&source, &parameters, &config.settings(), policy).unwrap();
    let (second, _) =
        dropbert::hf::load_weights(&source, &parameters, &config.settings(), policy).unwrap();
    assert_eq!(first, second, "initialisation is seeded");
    assert_eq!(
        report.initialized,
        vec![
            "cls.predictions.transform.dense.weight",
            "cls.predictions.transform.dense.bias",
            "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.transform.LayerNorm.bias",
            "cls.predictions.bias",
        ]
    );
    assert_eq!(
        report.unused,
        vec!["pooler.dense.bias", "pooler.dense.weight"]
    );
}
