//! How parse time grows with the plan: an `#[ignore]`d measurement, not a timed test.
//!
//! `cargo test -p crescendo-plan --release --test scaling -- --ignored --nocapture`
//! prints the time to parse plans of N steps, doubling N (`SCALING_MAX` sets the largest,
//! default 64000), and the ratio to the previous N: about 2 when parsing is linear. Past
//! `limits::MAX_STEPS` it is the time to refuse the plan, which must stay linear too.

use std::time::Instant;

/// A plan of `n` steps, each capturing a variable the next one uses in its path, a
/// header and a body (the shapes that once made validation quadratic).
fn plan(n: usize, captures: bool) -> String {
    let mut text = String::from(
        "name = \"scale\"\n[target]\nbase_url = \"http://127.0.0.1:8080\"\n\
         headers = { X-Load-Test = \"crescendo {agent}\" }\n",
    );
    for i in 0..n {
        if !captures {
            text.push_str(&format!(
                "[[scenario.steps]]\nname = \"s{i}\"\npath = \"/x/{{seq}}\"\n"
            ));
            continue;
        }
        let prev = if i == 0 {
            "seq".to_owned()
        } else {
            format!("v{}", i - 1)
        };
        text.push_str(&format!(
            "[[scenario.steps]]\nname = \"s{i}\"\nmethod = \"PUT\"\npath = \"/x/{{{prev}}}\"\n\
             headers = {{ X-Step = \"{{{prev}}}\" }}\nbody = '{{\"a\": \"{{{prev}}}\"}}'\n\
             captures = {{ v{i} = \"/id\" }}\n"
        ));
    }
    text.push_str("[load]\nstages = [{ duration = \"1s\", target = 1 }]\n");
    text
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn parse_time_grows_linearly() {
    let max: usize = std::env::var("SCALING_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64_000);
    for captures in [false, true] {
        println!("steps with captures: {captures}");
        measure(max, captures);
    }
}

fn measure(max: usize, captures: bool) {
    let mut previous: Option<f64> = None;
    let mut n = 1000;
    while n <= max {
        let text = plan(n, captures);
        let start = Instant::now();
        let outcome = crescendo_plan::parse(&text, "scale.toml");
        let secs = start.elapsed().as_secs_f64();
        let ratio = previous.map_or(String::new(), |p| format!(" (x{:.2})", secs / p));
        let what = match outcome {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("error: {}", e.message),
        };
        println!(
            "N = {n:>7} steps, {:>9} bytes: {secs:.4} s{ratio} {what}",
            text.len()
        );
        previous = Some(secs);
        n *= 2;
    }
}

/// Plan-sized garbage of a few shapes (random punctuation; many keys; many tables): the
/// time to refuse it. `GARBAGE=keys` runs one shape, e.g. under `/usr/bin/time -v` for
/// the peak memory; `GARBAGE_BYTES` sets the size (default `MAX_PLAN_BYTES`).
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn garbage_is_refused() {
    let only = std::env::var("GARBAGE").ok();
    let max = std::env::var("GARBAGE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(crescendo_plan::limits::MAX_PLAN_BYTES);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = |len: usize| -> String {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b" =[]{}\"'.,#\na1_-"[(state % 16) as usize])
            })
            .collect()
    };
    let repeat = |f: &dyn Fn(usize) -> String| -> String {
        let mut text = String::new();
        let mut i = 0;
        while text.len() < max - 64 {
            text.push_str(&f(i));
            i += 1;
        }
        text
    };
    let shapes: Vec<(&str, String)> = vec![
        ("random", random(max)),
        ("keys", repeat(&|i| format!("k{i} = {i}\n"))),
        ("tables", repeat(&|i| format!("[[t]]\nk = {i}\n"))),
        (
            "arrays",
            format!("a = [{}]\n", "[1],".repeat((max - 16) / 4)),
        ),
    ];
    for (name, text) in shapes {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let start = Instant::now();
        let e = crescendo_plan::parse(&text, "garbage.toml").unwrap_err();
        let secs = start.elapsed().as_secs_f64();
        println!("{name}: {} bytes: {secs:.4} s: {e}", text.len());
    }
}
