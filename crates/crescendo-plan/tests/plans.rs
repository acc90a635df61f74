//! The shipped example, the documented format, and splitting real plans.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use crescendo_plan::{
    CompareOp, DataSource, Load, Metric, Partition, Policy, Stat, parse, split, split_evenly,
};
use proptest::prelude::*;

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/flow-update.toml")
}

#[test]
fn the_worked_example_loads() {
    let plan = crescendo_plan::load(&example_path()).unwrap();
    assert_eq!(plan.name, "flow-update");
    assert_eq!(plan.target.base_url, "http://127.0.0.1:8080");
    assert_eq!(plan.target.timeout, Duration::from_secs(10));
    let [step] = plan.scenario.steps.as_slice() else {
        panic!("expected one step");
    };
    assert_eq!(
        (step.method.as_str(), step.path.as_str()),
        ("PUT", "/api/v2/flows/{flowId}")
    );
    let body = step.body.as_deref().unwrap();
    assert!(body.contains("{flowId}") && body.contains("{seq}"));
    let Load::Open(open) = &plan.load else {
        panic!("expected the open model");
    };
    assert_eq!(open.start_rate, 5.0);
    assert_eq!(open.max_in_flight, 100);
    assert_eq!(open.rate_at(Duration::from_secs(5)), 10.0);
    assert_eq!(open.rate_at(Duration::from_secs(15)), 20.0);
    assert!((open.iterations_until(plan.duration()) - 487.5).abs() < 1e-9);
    assert_eq!(plan.duration(), Duration::from_secs(30));
    assert_eq!(plan.backoff.policy, Policy::RetryAfter);
    let data = plan.data.as_ref().unwrap();
    assert_eq!(data.partition, Partition::PerAgent);
    assert!(
        matches!(&data.source, DataSource::Sequence { var, count: 100, .. } if var == "flowId")
    );
    let exprs: Vec<&str> = plan.thresholds.iter().map(|t| t.expr.as_str()).collect();
    assert_eq!(exprs, ["latency.p99 < 800ms", "errors == 0"]);
    assert_eq!(
        plan.thresholds[0].metric,
        Metric::Latency(Stat::Percentile(99.0))
    );
    assert_eq!(plan.thresholds[0].op, CompareOp::Lt);
    assert_eq!(plan.thresholds[0].value, 800.0);

    // Rendering the step for agent 1 of 3 with its first row.
    let shares = split(&plan, 3).unwrap();
    let rows = data.rows_for(&shares[1]);
    assert_eq!(rows.len(), 33);
    assert_eq!(rows[0]["flowId"], "flow-2");
    let templates = plan.step_templates();
    let lookup = |name: &str| match name {
        "seq" => Some(Cow::Borrowed("7")),
        "agent" => Some(Cow::Borrowed("agent-1")),
        other => rows[0].get(other).map(|v| Cow::Borrowed(v.as_str())),
    };
    assert_eq!(
        templates[0].path.render_to_string(lookup),
        "/api/v2/flows/flow-2"
    );
    let body = templates[0].body.as_ref().unwrap().render_to_string(lookup);
    assert!(
        body.starts_with(r#"{"name": "flow flow-2 rev 7""#),
        "{body}"
    );
}

#[test]
fn the_documented_format_parses() {
    let docs = include_str!("../src/lib.rs");
    let toml: String = docs
        .lines()
        .skip_while(|l| *l != "//! ```toml")
        .skip(1)
        .take_while(|l| *l != "//! ```")
        .map(|l| {
            format!(
                "{}\n",
                l.trim_start_matches("//!").strip_prefix(' ').unwrap_or("")
            )
        })
        .collect();
    assert!(toml.contains("[thresholds]"));
    let plan = parse(&toml, "lib.rs docs").unwrap();
    assert_eq!(plan.thresholds.len(), 6);
    assert_eq!(plan.thresholds[3].expr, "goodput_rps >= 4.5");
    assert_eq!(plan.thresholds[4].step.as_deref(), Some("update"));
    assert!(plan.thresholds[5].abort.is_some());
    assert!(matches!(
        plan.auth,
        crescendo_plan::Auth::OAuth2ClientCredentials(_)
    ));
    assert_eq!(plan.scenario.steps[0].captures[0].var, "version");
    assert_eq!(plan.scenario.steps[0].checks.len(), 1);
    assert_eq!(plan.scenario.steps[0].expect, [200]);
    assert_eq!(plan.scenario.steps[0].query["trace"], "{uuid}");
    // A step header replaces nothing here; the target's header is merged in.
    let templates = plan.step_templates();
    let headers: Vec<&str> = templates[0]
        .headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(headers, ["X-Load-Test", "Content-Type"]);
}

#[test]
fn defaults() {
    let plan = parse(
        "name = \"d\"\n[target]\nbase_url = \"http://h\"\n[[scenario.steps]]\nname = \"s\"\n\
         method = \"get\"\npath = \"/\"\n[load]\nstages = [{ duration = \"1m30s\", target = 2.5 }]\n",
        "d.toml",
    )
    .unwrap();
    assert_eq!(plan.scenario.steps[0].method, "GET");
    assert!(plan.scenario.steps[0].expect.is_empty());
    let Load::Open(open) = &plan.load else {
        panic!()
    };
    assert_eq!((open.start_rate, open.max_in_flight), (2.5, 1000));
    assert_eq!(plan.duration(), Duration::from_secs(90));
    let b = &plan.backoff;
    assert_eq!(b.policy, Policy::RetryAfter);
    assert_eq!((b.max_retries, b.retry_budget), (3, 0.2));
    assert_eq!(b.max_retry_after, Duration::from_secs(180));
    assert_eq!(
        (b.base, b.cap),
        (Duration::from_millis(100), Duration::from_secs(30))
    );
    assert!(plan.data.is_none() && plan.thresholds.is_empty());
}

fn closed_plan(vus: &[u32], rows: u64) -> String {
    let stages: Vec<String> = vus
        .iter()
        .map(|v| format!("{{ duration = \"1s\", target = {v} }}"))
        .collect();
    format!(
        "name = \"c\"\n[target]\nbase_url = \"http://h\"\n[[scenario.steps]]\nname = \"s\"\npath = \"/{{id}}\"\n\
         [load]\nmodel = \"closed\"\nthink_time = \"100ms\"\nstages = [{}]\n\
         [data]\nsequence = {{ var = \"id\", format = \"{{n}}\", count = {rows} }}\n",
        stages.join(", ")
    )
}

#[test]
fn split_errors() {
    let plan = crescendo_plan::load(&example_path()).unwrap();
    let e = split(&plan, 0).unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.line, e.key.as_str()),
        ("arguments", 0, "agents")
    );
    assert_eq!(
        e.to_string(),
        "arguments: agents: expected at least 1 agent, got 0"
    );
    let e = split(&plan, 101).unwrap_err();
    assert_eq!(e.key, "load.max_in_flight");
    let e = plan.split(101).unwrap_err();
    assert!(e.message.contains("1 in flight per agent"), "{e}");
    let few_rows = parse(&closed_plan(&[10], 2), "c").unwrap();
    let e = split(&few_rows, 3).unwrap_err();
    assert_eq!(e.key, "data.sequence.count");
    assert!(e.message.contains("at least one row per agent"), "{e}");
}

#[test]
fn ten_vus_on_three_agents() {
    let plan = parse(&closed_plan(&[4, 10, 2], 30), "c").unwrap();
    let shares = split(&plan, 3).unwrap();
    let vus: Vec<u32> = shares.iter().map(|s| s.vus).collect();
    assert_eq!(vus, [4, 3, 3]);
    assert_eq!(
        shares.iter().map(|s| s.max_in_flight).collect::<Vec<_>>(),
        [4, 3, 3]
    );
    let Load::Closed(closed) = &plan.load else {
        panic!()
    };
    assert_eq!(closed.think_time, Duration::from_millis(100));
    assert_eq!(closed.start_vus, 4);
}

proptest! {
    #[test]
    fn shares_add_up_to_the_plan(vus in prop::collection::vec(0u32..5000, 1..4), agents in 1u32..64) {
        prop_assume!(vus.iter().any(|v| *v > 0));
        let plan = parse(&closed_plan(&vus, 1000), "c").unwrap();
        let shares = split(&plan, agents).unwrap();
        prop_assert_eq!(shares.len(), agents as usize);
        let peak = *vus.iter().max().unwrap();
        prop_assert_eq!(shares.iter().map(|s| u64::from(s.vus)).sum::<u64>(), u64::from(peak));
        let fractions: f64 = shares.iter().map(|s| s.rate_fraction).sum();
        prop_assert!((fractions - 1.0).abs() < 1e-9);
        for (i, s) in shares.iter().enumerate() {
            prop_assert_eq!((s.index as usize, s.count), (i, agents));
            prop_assert_eq!(u64::from(s.vus), split_evenly(u64::from(peak), agents, s.index));
        }
        // At every instant the shares' VUs add up to the fleet's.
        let Load::Closed(closed) = &plan.load else { unreachable!() };
        for ms in (0..=3000).step_by(250) {
            let t = Duration::from_millis(ms);
            let sum: u32 = shares.iter().map(|s| closed.vus_at_for(t, s)).sum();
            prop_assert_eq!(sum, closed.vus_at(t));
        }
    }

    #[test]
    fn open_shares_split_the_cap(cap in 1u32..100_000, agents in 1u32..200) {
        let text = std::fs::read_to_string(example_path()).unwrap()
            .replace("max_in_flight = 100", &format!("max_in_flight = {cap}"))
            .replace("partition = \"per-agent\"", "partition = \"shared\"");
        let plan = parse(&text, "x").unwrap();
        match split(&plan, agents) {
            Ok(shares) => {
                prop_assert!(cap >= agents);
                prop_assert_eq!(shares.iter().map(|s| u64::from(s.max_in_flight)).sum::<u64>(), u64::from(cap));
                prop_assert!(shares.iter().all(|s| s.max_in_flight >= 1 && s.vus == 0));
                let fractions: f64 = shares.iter().map(|s| s.rate_fraction).sum();
                prop_assert!((fractions - 1.0).abs() < 1e-9);
            }
            Err(e) => {
                prop_assert!(cap < agents);
                prop_assert_eq!(e.key, "load.max_in_flight");
            }
        }
    }

    #[test]
    fn agent_ceilings_never_add_up_above_the_plans(
        total in 1u64..1_000_000,
        rate in 0.001..100_000.0f64,
        agents in 1u32..100,
    ) {
        let text = std::fs::read_to_string(example_path()).unwrap()
            .replace("max_in_flight = 100", "max_in_flight = 1000")
            .replace("partition = \"per-agent\"", "partition = \"shared\"")
            .replace("[load]\n", &format!("[load]\nmax_total_requests = {total}\nmax_rps = {rate:?}\n"));
        let plan = parse(&text, "x").unwrap();
        prop_assert_eq!(plan.ceilings.max_total_requests, Some(total));
        let parts: Vec<_> = split(&plan, agents).unwrap().iter().map(|s| plan.ceilings_for(s)).collect();
        let requests: u64 = parts.iter().map(|p| p.max_requests.unwrap()).sum();
        prop_assert_eq!(requests, total);
        // As even as integers allow (the first `total % agents` get one more).
        let floor = total / u64::from(agents);
        prop_assert!(parts.iter().all(|p| (floor..=floor + 1).contains(&p.max_requests.unwrap())));
        let rates: f64 = parts.iter().map(|p| p.max_rps.unwrap()).sum();
        prop_assert!(rates <= rate && rates > rate * 0.999_999, "{} of {}", rates, rate);
    }

    #[test]
    fn mutated_example_never_panics(at in 0usize..2000, cut in 0usize..40, insert in ".{0,20}") {
        let text = std::fs::read_to_string(example_path()).unwrap();
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        let mut end = (at + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{insert}{}", &text[..at], &text[end..]);
        if let Err(e) = parse(&mutated, "m") {
            prop_assert!(e.line >= 1 && e.column >= 1, "{}", e);
        }
    }
}
