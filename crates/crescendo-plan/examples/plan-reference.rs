//! Prints `docs/plan-reference.md`:
//! `cargo run -p crescendo-plan --example plan-reference > docs/plan-reference.md`.

fn main() {
    print!("{}", crescendo_plan::reference::markdown());
}
