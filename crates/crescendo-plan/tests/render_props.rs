//! Property: a valid plan generated as a model (every section, awkward strings) renders
//! to TOML that parses back to the very same plan.

use std::collections::BTreeMap;
use std::time::Duration;

use crescendo_plan::{
    AbortOnFail, Auth, Backoff, BundleFiles, Capture, Ceilings, Check, ClientCredentials,
    ClientSharing, ClosedLoad, CompareOp, CountKind, Data, DataFile, DataFormat, DataSource, Load,
    Metric, OAuthClient, OnExhausted, OpenLoad, Partition, Plan, Policy, RateStage, Scenario,
    Secret, Stat, Step, Target, Threshold, VuStage, parse_with,
};
use proptest::prelude::*;
use serde_json::Value;

/// Text where anything goes (not a template): quotes, backslashes, line breaks, control
/// characters, TOML syntax, unicode; or any string at all.
fn text() -> BoxedStrategy<String> {
    let tricky = prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                '"', '\'', '\\', '\n', '\r', '\t', '\u{0}', '\u{7}', '\u{7f}', 'é', '✓', '😀', ' ',
                '#', '=', '[', ']', '.', '{', '}',
            ]),
            prop::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect::<String>());
    prop_oneof![3 => tricky, 1 => any::<String>()].boxed()
}

/// A template: text without braces, variables that always exist, and brace escapes.
/// `line`: no line breaks or NUL (header values).
fn template(line: bool) -> BoxedStrategy<String> {
    let plain = text().prop_map(move |t| {
        t.chars()
            .filter(|c| !matches!(c, '{' | '}'))
            .filter(|c| !(line && matches!(c, '\r' | '\n' | '\0')))
            .collect::<String>()
    });
    let piece = prop_oneof![
        3 => plain,
        1 => prop::sample::select(vec!["{seq}", "{agent}", "{uuid}", "{{", "}}", "{{name}}", "{ x }"])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..5)
        .prop_map(|v| v.concat())
        .boxed()
}

/// A name that trimming leaves alone, unique by its index, without the control and
/// bidirectional formatting characters names refuse.
fn name(i: usize) -> impl Strategy<Value = String> {
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    text().prop_map(move |t| {
        let t: String = t.chars().filter(|&c| !c.is_control() && !bidi(c)).collect();
        format!("s{i}-{t}z")
    })
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..100_000).prop_map(Duration::from_millis),
        (1u64..30 * 86_400 * 1_000_000_000).prop_map(Duration::from_nanos),
    ]
}

fn secret() -> impl Strategy<Value = Secret> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,8}".prop_map(Secret::Env),
        text().prop_map(|t| Secret::File(format!("f{t}"))),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    let client = (secret(), secret()).prop_map(|(client_id, client_secret)| ClientCredentials {
        client_id,
        client_secret,
    });
    let oauth = (
        prop::sample::select(vec![
            "https://login.example.com/oauth/token",
            "http://127.0.0.1:8080/oauth/token",
        ]),
        prop::collection::vec(client, 1..4),
        any::<bool>(),
        duration(),
        prop::option::of(text().prop_map(|t| format!("scope {t}"))),
    )
        .prop_map(|(url, clients, per_agent, refresh_before, scope)| {
            let sharing = if per_agent || clients.len() > 1 {
                ClientSharing::PerAgent
            } else {
                ClientSharing::Shared
            };
            Auth::OAuth2ClientCredentials(OAuthClient {
                token_url: url.to_owned(),
                clients,
                sharing,
                refresh_before,
                scope,
            })
        });
    prop_oneof![
        Just(Auth::None),
        secret().prop_map(|token| Auth::Bearer { token }),
        oauth,
    ]
}

/// Header names: HTTP tokens, unique ignoring case, never credential-like (Authorization,
/// `*key*`, `*token*` …: those may not hold the literal text generated here).
fn headers() -> impl Strategy<Value = BTreeMap<String, String>> {
    let credential = |n: &str| {
        let n = n.to_ascii_lowercase();
        [
            "authorization",
            "cookie",
            "key",
            "token",
            "secret",
            "password",
        ]
        .iter()
        .any(|w| n.contains(w))
    };
    let name =
        "X-[a-z0-9!#$%&'*+.^_`|~-]{1,6}".prop_filter("credential-like", move |n| !credential(n));
    prop::collection::btree_map(name, template(true), 0..3)
}

fn pointer() -> impl Strategy<Value = String> {
    let segment = prop::collection::vec(
        prop_oneof![
            "[a-z0-9 é\"\\\\.]{1,3}",
            Just("~0".to_owned()),
            Just("~1".to_owned())
        ],
        0..3,
    )
    .prop_map(|v| v.concat());
    prop::collection::vec(segment, 0..3).prop_map(|v| v.iter().map(|s| format!("/{s}")).collect())
}

fn check() -> impl Strategy<Value = Check> {
    let equals = prop_oneof![
        template(false).prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO)
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
    ];
    (pointer(), equals).prop_map(|(pointer, equals)| Check { pointer, equals })
}

fn step(i: usize) -> impl Strategy<Value = Step> {
    let head = (
        name(i),
        prop::sample::select(vec![
            "GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS",
        ]),
        "/[a-z0-9/_.~%é-]{0,8}",
        prop::collection::btree_map(text(), template(false), 0..3),
        headers(),
        prop::option::of(template(false)),
    );
    let tail = (
        prop::collection::vec(100u16..=599, 0..3),
        prop::collection::vec(("[a-z0-9_]{0,3}", pointer()), 0..3),
        prop::collection::vec(check(), 0..3),
        prop::sample::select(vec!["", "{seq}", "/{agent}{{x}}"]),
    );
    (head, tail).prop_map(
        move |((name, method, path, query, headers, body), (expect, captures, checks, var))| {
            let captures = captures
                .into_iter()
                .enumerate()
                .map(|(k, (suffix, pointer))| Capture {
                    var: format!("c{i}_{k}_{suffix}"),
                    pointer,
                })
                .collect();
            Step {
                name,
                method: method.to_owned(),
                path: format!("{path}{var}"),
                query,
                headers,
                body,
                body_file: None,
                expect,
                captures,
                checks,
            }
        },
    )
}

fn load() -> impl Strategy<Value = Load> {
    let open = (
        0.0..=1e9f64,
        prop::collection::vec((duration(), 0.0..=1e9f64), 1..5),
        1u32..=u32::MAX,
    )
        .prop_map(|(start_rate, stages, max_in_flight)| {
            let mut stages: Vec<RateStage> = stages
                .into_iter()
                .map(|(duration, target)| RateStage { duration, target })
                .collect();
            if start_rate == 0.0 && stages.iter().all(|s| s.target == 0.0) {
                stages[0].target = 1.0;
            }
            Load::Open(OpenLoad {
                start_rate,
                stages,
                max_in_flight,
            })
        });
    let closed = (
        any::<u32>(),
        prop::collection::vec((duration(), any::<u32>()), 1..5),
        prop_oneof![Just(Duration::ZERO), duration()],
    )
        .prop_map(|(start_vus, stages, think_time)| {
            let mut stages: Vec<VuStage> = stages
                .into_iter()
                .map(|(duration, target)| VuStage { duration, target })
                .collect();
            if start_vus == 0 && stages.iter().all(|s| s.target == 0) {
                stages[0].target = 1;
            }
            Load::Closed(ClosedLoad {
                start_vus,
                stages,
                think_time,
            })
        });
    prop_oneof![open, closed]
}

/// `max_total_requests` (TOML integers stop at `i64::MAX`) and `max_rps`, each optional.
fn ceilings() -> impl Strategy<Value = Ceilings> {
    (
        prop::option::of(1u64..=i64::MAX as u64),
        prop::option::of(prop_oneof![
            Just(crescendo_plan::MAX_RATE),
            f64::MIN_POSITIVE..=crescendo_plan::MAX_RATE,
            1e-9..1.0f64,
        ]),
    )
        .prop_map(|(max_total_requests, max_rps)| Ceilings {
            max_total_requests,
            max_rps,
        })
}

fn backoff() -> impl Strategy<Value = Backoff> {
    (
        prop::sample::select(vec![
            Policy::None,
            Policy::RetryAfter,
            Policy::Exponential,
            Policy::Coordinated,
        ]),
        any::<u32>(),
        0.0..=1.0f64,
        duration(),
        duration(),
        duration(),
    )
        .prop_map(
            |(policy, retries, retry_budget, max_retry_after, a, b)| Backoff {
                policy,
                max_retries: if policy == Policy::None { 0 } else { retries },
                retry_budget,
                max_retry_after,
                base: a.min(b),
                cap: a.max(b),
            },
        )
}

/// `[data]` and the files an agent would get for it (a data file's header).
fn data() -> impl Strategy<Value = Option<(Data, BundleFiles)>> {
    let columns = prop::collection::btree_set("d_[a-z0-9_]{0,4}", 1..4);
    let inline = (columns.clone(), 1usize..4)
        .prop_flat_map(|(columns, n)| {
            let row = columns
                .into_iter()
                .map(|c| (Just(c), text()))
                .collect::<Vec<_>>();
            prop::collection::vec(row, n)
        })
        .prop_map(|rows| {
            let rows = rows.into_iter().map(|r| r.into_iter().collect()).collect();
            (DataSource::Inline(rows), BundleFiles::default())
        });
    let sequence = (template(false), 1u64..=1_000_000).prop_map(|(t, count)| {
        (
            DataSource::Sequence {
                var: "d_seq".to_owned(),
                format: format!("{}{{n}}", t.replace(['{', '}'], "")),
                count,
            },
            BundleFiles::default(),
        )
    });
    let file = columns.prop_map(|columns| {
        let columns: Vec<String> = columns.into_iter().rev().collect();
        let header = format!("{}\n", columns.join(","));
        let files = BundleFiles(BTreeMap::from([(
            "data/rows.csv".to_owned(),
            header.into_bytes(),
        )]));
        let file = DataFile {
            path: "data/rows.csv".to_owned(),
            format: DataFormat::Csv,
            columns,
        };
        (DataSource::File(file), files)
    });
    let partition = prop::sample::select(vec![
        Partition::PerAgent,
        Partition::Shared,
        Partition::Unique,
    ]);
    let on_exhausted = prop::sample::select(vec![OnExhausted::StopAgent, OnExhausted::StopRun]);
    prop::option::of(
        (prop_oneof![inline, sequence, file], partition, on_exhausted).prop_map(
            |((source, files), partition, on_exhausted)| {
                let data = Data {
                    source,
                    partition,
                    on_exhausted,
                };
                (data, files)
            },
        ),
    )
}

/// A threshold as validation builds it: `(key, op, number, unit, metric, scale)`.
type Entry = (&'static str, CompareOp, f64, &'static str, Metric, f64);

fn catalogue() -> Vec<Entry> {
    use CompareOp::*;
    vec![
        (
            "latency.p99",
            Lt,
            800.0,
            "ms",
            Metric::Latency(Stat::Percentile(99.0)),
            1.0,
        ),
        (
            "latency.p999",
            Le,
            1.5,
            "s",
            Metric::Latency(Stat::Percentile(99.9)),
            1000.0,
        ),
        (
            "service_time.mean",
            Gt,
            900.0,
            "us",
            Metric::ServiceTime(Stat::Mean),
            0.001,
        ),
        ("latency.max", Ge, 2.0, "", Metric::Latency(Stat::Max), 1.0),
        ("errors", Eq, 0.0, "", Metric::Count(CountKind::Errors), 1.0),
        (
            "throttled_ratio",
            Lt,
            0.02,
            "",
            Metric::Ratio(CountKind::Throttled),
            1.0,
        ),
        ("goodput_rps", Ge, 4.5, "", Metric::GoodputRps, 1.0),
    ]
}

fn threshold(entry: &Entry, step: Option<&str>, abort: Option<Duration>) -> Threshold {
    let (key, op, number, unit, metric, scale) = entry.clone();
    let key = match step {
        Some(s) => format!("steps.{s}.{key}"),
        None => key.to_owned(),
    };
    Threshold {
        expr: format!("{key} {op} {number}{unit}"),
        metric,
        op,
        value: number * scale,
        step: step.map(str::to_owned),
        abort: abort.map(|grace| AbortOnFail { grace }),
    }
}

fn plans() -> impl Strategy<Value = (Plan, BundleFiles)> {
    let steps = (1usize..4).prop_flat_map(|n| (0..n).map(step).collect::<Vec<_>>());
    let thresholds = prop::collection::vec(
        (
            0..catalogue().len(),
            prop::option::of(0usize..4),
            prop::option::of(prop_oneof![Just(Duration::ZERO), duration()]),
        ),
        0..5,
    );
    let head = (
        name(0),
        prop::option::of(text()),
        prop::sample::select(vec![
            "http://127.0.0.1:8080",
            "https://api.example.com/v2",
            "http://[::1]:80",
        ]),
        duration(),
        headers(),
        auth(),
    );
    let load = (load(), ceilings());
    (head, steps, load, backoff(), data(), thresholds).prop_map(
        |(
            (name, description, url, timeout, headers, auth),
            steps,
            (load, ceilings),
            backoff,
            data,
            ts,
        )| {
            let mut thresholds: Vec<Threshold> = Vec::new();
            let mut keys = Vec::new();
            for (entry, step, abort) in ts {
                let step = step.and_then(|s| steps.get(s)).map(|s| s.name.as_str());
                // Keys are unique in a TOML table.
                if !keys.contains(&(entry, step)) {
                    keys.push((entry, step));
                    thresholds.push(threshold(&catalogue()[entry], step, abort));
                }
            }
            let (data, files) = data.unzip();
            let plan = Plan {
                name,
                description,
                target: Target {
                    base_url: url.to_owned(),
                    timeout,
                    headers,
                },
                scenario: Scenario { steps },
                load,
                ceilings,
                backoff,
                data,
                thresholds,
                auth,
                fleet: Default::default(),
            };
            (plan, files.unwrap_or_default())
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rendered_plans_parse_back_to_themselves((plan, files) in plans()) {
        let text = plan.to_toml();
        let back = parse_with(&text, "rendered", &files)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &plan, "{}", text);
        prop_assert_eq!(back.to_toml(), text);
    }
}
