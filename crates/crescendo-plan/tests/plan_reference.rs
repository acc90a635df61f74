//! `docs/plan-reference.md` is what the validator accepts: the committed file equals
//! the text generated from the validator, and every key the validator accepts is
//! named in the documentation.

const REGENERATE: &str =
    "regenerate: cargo run -p crescendo-plan --example plan-reference > docs/plan-reference.md";

#[test]
fn the_committed_reference_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/plan-reference.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = crescendo_plan::reference::markdown();
    assert!(
        committed == generated,
        "docs/plan-reference.md differs from the validator's reference; {REGENERATE}"
    );
}

#[test]
fn every_accepted_key_is_documented() {
    let keys = crescendo_plan::reference::accepted_keys();
    assert!(
        keys.iter().all(|(_, k)| !k.is_empty()),
        "every table lists its keys: {keys:?}"
    );
    assert!(keys[0].1.contains(&"target".to_owned()), "{keys:?}");
    let undocumented = crescendo_plan::reference::undocumented_keys();
    assert!(
        undocumented.is_empty(),
        "keys the validator accepts that the plan docs (crates/crescendo-plan/src/lib.rs, \"Format\") never name: {undocumented:?}; then {REGENERATE}"
    );
}
