//! The `grads` subcommand under token dropping, layer dropping and both, against the independent
//! PyTorch reference of the two methods (scripts/drop_reference.py; fixtures made by
//! scripts/make_drop_fixtures.py): loss, every gradient, the updated importance table and the
//! kept positions.

use std::collections::BTreeMap;

use crate::common::{
    fixture, read_fixture, relative_error, BothPreLn, LayerDropPreLn, TokenDropLastSplit,
    TokenDropPostLn,
};
use dropbert::{config::BertConfig, hf::TensorData};

/// Runs `grads` on the case's checkpoint and batch; returns what it wrote.
fn run_grads<C: BertConfig>(case: &str) -> BTreeMap<String, TensorData> {
    let dir = fixture(&format!("drops/{case}"));
    let out = std::env::temp_dir().join(format!(
        "dropbert-drop-parity-{case}-{}.safetensors",
        std::process::id()
    ));
    dropbert::cli::run::<C>([
        "bert".as_ref(),
        "grads".as_ref(),
        "--checkpoint".as_ref(),
        dir.join("checkpoint").as_os_str(),
        "--batch".as_ref(),
        dir.join("batch.safetensors").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .unwrap();
    let written = dropbert::hf::read_tensor_file(&out).unwrap();
    std::fs::remove_file(out).unwrap();
    written
}

fn check<C: BertConfig>(case: &str) {
    let written = run_grads::<C>(case);
    let expected = read_fixture(&format!("drops/{case}/expected.safetensors"));

    if let Some(kept) = expected.get("kept_positions") {
        assert_eq!(
            written["kept_positions"].to_f32(),
            kept.to_f32(),
            "{case}: kept positions"
        );
    }
    if let Some(table) = expected.get("token_importance") {
        let error = relative_error(&written["token_importance"].to_f32(), &table.to_f32(), 0.0);
        assert!(error < 1e-6, "{case}: importance table error {error}");
    }
    let (loss, expected_loss) = (written["loss"].to_f32()[0], expected["loss"].to_f32()[0]);
    assert!(
        (loss - expected_loss).abs() / expected_loss.abs() < 1e-5,
        "{case}: loss {loss} vs {expected_loss}"
    );
    let gradient_names: Vec<&String> = expected
        .keys()
        .filter(|name| {
            !matches!(
                name.as_str(),
                "loss" | "token_importance" | "kept_positions"
            )
        })
        .collect();
    let scale_floor = 1e-3
        * gradient_names
            .iter()
            .flat_map(|name| expected[*name].to_f32())
            .fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = (0f32, "");
    for name in gradient_names {
        let reference = &expected[name];
        let actual = written
            .get(name)
            .unwrap_or_else(|| panic!("{case}: no gradient {name}"));
        assert_eq!(actual.shape, reference.shape, "{name}");
        let error = relative_error(&actual.to_f32(), &reference.to_f32(), scale_floor);
        if error > worst.0 {
            worst = (error, name);
        }
        assert!(error < 1e-4, "{case}: {name} relative error {error}");
    }
    eprintln!(
        "{case}: loss {loss}, worst gradient {} ({:e})",
        worst.1, worst.0
    );
}

#[test]
fn token_dropping_matches_the_reference() {
    check::<TokenDropPostLn>("token_drop_post_ln");
}

#[test]
fn token_dropping_with_the_split_just_before_the_last_layer_matches_the_reference() {
    check::<TokenDropLastSplit>("token_drop_last_split");
}

#[test]
fn layer_dropping_matches_the_reference() {
    check::<LayerDropPreLn>("layer_drop_pre_ln");
}

#[test]
fn both_together_match_the_reference() {
    check::<BothPreLn>("both_pre_ln");
}

#[test]
fn both_together_with_the_split_layer_gated_off_match_the_reference() {
    check::<BothPreLn>("both_split_gated_off");
}
