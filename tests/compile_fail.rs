//! Invalid `bert_config!` invocations must fail to compile with the readable message of
//! `dropbert::config::validate`. One file per rule under `tests/compile_fail/`.

#[test]
fn invalid_configurations_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}
