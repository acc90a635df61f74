//! `[auth]` (never a secret in the plan) and per-step / aborting thresholds.

mod common;

use std::time::Duration;

use common::{assert_err, plan};
use crescendo_plan::{
    AbortOnFail, Auth, ClientCredentials, ClientSharing, CountKind, Metric, Secret, Stat, parse,
};

const OAUTH: &str = "[auth]\nkind = \"oauth2-client-credentials\"\ntoken_url = \"https://login.mypurecloud.com/oauth/token\"\n";

fn auth(extra: &str) -> String {
    plan(&[], &format!("{OAUTH}{extra}"))
}

#[test]
fn oauth_client_credentials() {
    let text = auth(
        "client_id_env = \"ID\"\nclient_secret_file = \"/run/secrets/s\"\nscope = \"flows\"\n",
    );
    let Auth::OAuth2ClientCredentials(o) = parse(&text, "t").unwrap().auth else {
        panic!()
    };
    assert_eq!(o.token_url, "https://login.mypurecloud.com/oauth/token");
    assert_eq!(o.sharing, ClientSharing::Shared);
    assert_eq!(o.refresh_before, Duration::from_secs(60));
    assert_eq!(o.scope.as_deref(), Some("flows"));
    assert_eq!(
        o.clients,
        [ClientCredentials {
            client_id: Secret::Env("ID".into()),
            client_secret: Secret::File("/run/secrets/s".into()),
        }]
    );
    let text = auth(
        "sharing = \"per-agent\"\nrefresh_before = \"2m\"\nclients = [{ client_id_env = \"A\", client_secret_env = \"AS\" }, { client_id_env = \"B\", client_secret_env = \"BS\" }]\n",
    );
    let Auth::OAuth2ClientCredentials(o) = parse(&text, "t").unwrap().auth else {
        panic!()
    };
    assert_eq!((o.sharing, o.clients.len()), (ClientSharing::PerAgent, 2));
    assert_eq!(o.refresh_before, Duration::from_secs(120));
    assert_eq!(o.client_for(3).client_id, Secret::Env("B".into()));
    let text = plan(
        &[],
        "[auth]\nkind = \"bearer\"\ntoken_env = \"CRESCENDO_API_TOKEN\"\n",
    );
    assert_eq!(
        parse(&text, "t").unwrap().auth,
        Auth::Bearer {
            token: Secret::Env("CRESCENDO_API_TOKEN".into())
        }
    );
    assert_eq!(parse(&plan(&[], ""), "t").unwrap().auth, Auth::None);
    assert_eq!(
        parse(&plan(&[], "[auth]\nkind = \"none\"\n"), "t")
            .unwrap()
            .auth,
        Auth::None
    );
}

#[test]
fn literal_secrets_are_rejected() {
    let msg = "secrets never go in a plan: use client_secret_env or client_secret_file";
    let text = auth("client_id_env = \"ID\"\nclient_secret = \"hunter2\"\n");
    assert_err(&text, "\"hunter2\"", "auth.client_secret", msg);
    let text = auth("client_id = \"abc\"\nclient_secret_env = \"S\"\n");
    assert_err(
        &text,
        "\"abc\"",
        "auth.client_id",
        "use client_id_env or client_id_file",
    );
    let text = plan(&[], "[auth]\nkind = \"bearer\"\ntoken = \"abc\"\n");
    assert_err(
        &text,
        "\"abc\"",
        "auth.token",
        "use token_env or token_file",
    );
    let text = plan(&[], "[auth]\naccess_token = \"abc\"\n");
    assert_err(
        &text,
        "\"abc\"",
        "auth.access_token",
        "secrets never go in a plan",
    );
    let text = auth("password = 123\n");
    assert_err(&text, "123", "auth.password", "secrets never go in a plan");
    let text = auth(
        "sharing = \"per-agent\"\nclients = [{ client_id_env = \"A\", client_secret = \"x\" }]\n",
    );
    assert_err(&text, "\"x\"", "auth.clients[0].client_secret", msg);
    // The error never echoes the secret.
    let e = common::err(&auth("client_secret = \"hunter2\"\n"));
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn authorization_headers() {
    let hdr = |v: &str| {
        plan(
            &[(
                "path = \"/x\"\n",
                &format!("path = \"/x\"\nheaders = {{ Authorization = \"{v}\" }}\n"),
            )],
            "[data]\nrows = [{ token = \"t\" }]\n",
        )
    };
    let text = hdr("Bearer abc123");
    assert_err(
        &text,
        "\"Bearer abc123\"",
        "scenario.steps[0].headers.Authorization",
        "secrets never go in a plan",
    );
    let text = hdr("Bearer abc {token}");
    assert_err(
        &text,
        "\"Bearer",
        "scenario.steps[0].headers.Authorization",
        "expected a template such as",
    );
    assert!(parse(&hdr("Bearer {token}"), "t").is_ok());
    assert!(parse(&hdr("{token}"), "t").is_ok());
    let text = plan(
        &[(
            "base_url = ",
            "headers = { authorization = \"Basic x\" }\nbase_url = ",
        )],
        "",
    );
    assert_err(
        &text,
        "\"Basic x\"",
        "target.headers.authorization",
        "secrets never go in a plan",
    );
    let text = format!(
        "{}[auth]\nkind = \"bearer\"\ntoken_env = \"T\"\n",
        hdr("Bearer {token}")
    );
    assert_err(
        &text,
        "\"Bearer {token}\"",
        "scenario.steps[0].headers.Authorization",
        "the agent sets Authorization from [auth]",
    );
}

#[test]
fn credential_like_headers() {
    let step = |headers: &str, extra: &str| {
        plan(
            &[(
                "path = \"/x\"\n",
                &format!("path = \"/x\"\nheaders = {{ {headers} }}\n"),
            )],
            extra,
        )
    };
    let rows = "[data]\nrows = [{ apiKey = \"k\", sid = \"s\" }]\n";
    for ok in [
        "X-Api-Key = \"{apiKey}\"",
        "x-auth-token = \"Token {apiKey}\"",
        "Cookie = \"session={sid}\"",
        "X-Load-Test = \"crescendo agent {agent}\", Content-Type = \"application/json\"",
        "X-Request-Id = \"fixed-literal value\"",
    ] {
        let text = step(ok, rows);
        assert!(parse(&text, "t").is_ok(), "{ok}: {}", common::err(&text));
    }
    // [auth] sets only Authorization: other credential headers stay templates.
    let text = format!(
        "{}[auth]\nkind = \"bearer\"\ntoken_env = \"T\"\n",
        step("X-Api-Key = \"{apiKey}\"", rows)
    );
    assert!(parse(&text, "t").is_ok());
    let how = "expected a template such as \"{apiKey}\" with the value from a data file column";
    let text = step("X-Api-Key = \"k-123\"", rows);
    assert_err(
        &text,
        "\"k-123\"",
        "scenario.steps[0].headers.X-Api-Key",
        "secrets never go in a plan: \"X-Api-Key\" looks like a credential (its name has key)",
    );
    assert!(common::err(&text).message.contains(how));
    assert!(!common::err(&text).message.contains("k-123"));
    let text = plan(
        &[(
            "base_url = ",
            "headers = { X-Client-Secret = 12345 }\nbase_url = ",
        )],
        "",
    );
    assert_err(&text, "12345", "target.headers.X-Client-Secret", how);
    let text = step("Cookie = \"a=1; session={sid}\"", rows);
    assert_err(
        &text,
        "\"a=1",
        "scenario.steps[0].headers.Cookie",
        "(its name has cookie)",
    );
    let text = step("Password = \"hunter2\"", rows);
    let e = common::err(&text);
    assert!(
        e.message.contains("(its name has password)") && !e.message.contains("hunter2"),
        "{e}"
    );
    let text = step("Proxy-Authorization = \"Basic dXNlcjpwdw==\"", rows);
    assert_err(
        &text,
        "\"Basic",
        "scenario.steps[0].headers.Proxy-Authorization",
        "expected a template such as \"Bearer {token}\"",
    );
}

#[test]
fn auth_errors() {
    let text = plan(&[], "[auth]\nkind = \"basic\"\n");
    assert_err(
        &text,
        "\"basic\"",
        "auth.kind",
        "expected \"none\", \"bearer\" or \"oauth2-client-credentials\"",
    );
    let text = plan(
        &[],
        "[auth]\nkind = \"oauth2-client-credentials\"\nclient_id_env = \"A\"\nclient_secret_env = \"B\"\n",
    );
    assert_err(&text, "[auth]", "auth.token_url", "missing required key");
    let text = auth("client_id_env = \"A\"\n");
    assert_err(
        &text,
        "[auth]",
        "auth.client_secret_env",
        "missing required key: expected client_secret_env",
    );
    let text = auth("client_id_env = \"A\"\nclient_id_file = \"f\"\nclient_secret_env = \"B\"\n");
    assert_err(
        &text,
        "\"A\"",
        "auth",
        "expected one of client_id_env and client_id_file, got both",
    );
    let text = auth("client_id_env = \"A B\"\nclient_secret_env = \"B\"\n");
    assert_err(
        &text,
        "\"A B\"",
        "auth.client_id_env",
        "expected an environment variable name",
    );
    // A secret pasted where the variable name goes is never echoed.
    let text = auth("client_id_env = \"A\"\nclient_secret_env = \"s3cr3t-Xy!9\"\n");
    let e = parse(&text, "t").unwrap_err().to_string();
    assert!(e.contains("auth.client_secret_env"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
    let text = plan(
        &[],
        "[auth]\nkind = \"oauth2-client-credentials\"\ntoken_url = \"login/oauth\"\nclient_id_env = \"A\"\nclient_secret_env = \"B\"\n",
    );
    assert_err(
        &text,
        "\"login/oauth\"",
        "auth.token_url",
        "expected an absolute http:// or https:// URL",
    );
    let text = auth("client_id_env = \"A\"\nclient_secret_env = \"B\"\nsharing = \"each\"\n");
    assert_err(
        &text,
        "\"each\"",
        "auth.sharing",
        "expected \"shared\" or \"per-agent\"",
    );
    let text = auth(
        "clients = [{ client_id_env = \"A\", client_secret_env = \"AS\" }, { client_id_env = \"B\", client_secret_env = \"BS\" }]\n",
    );
    assert_err(
        &text,
        "[{ client_id_env",
        "auth.clients",
        "expected one client with sharing = \"shared\"",
    );
    let text = auth(
        "client_id_env = \"A\"\nclient_secret_env = \"B\"\nclients = [{ client_id_env = \"A\", client_secret_env = \"AS\" }]\n",
    );
    assert_err(&text, "[{ client_id_env", "auth.clients", "got both");
    let text = auth("clients = []\n");
    assert_err(&text, "[]", "auth.clients", "expected at least one client");
    let text = auth("client_id_env = \"A\"\nclient_secret_env = \"B\"\nrefresh_before = \"0s\"\n");
    assert_err(
        &text,
        "\"0s\"",
        "auth.refresh_before",
        "expected a duration > 0",
    );
    let text = auth("client_id_env = \"A\"\nclient_secret_env = \"B\"\ntoken_env = \"T\"\n");
    assert_err(&text, "\"T\"", "auth", "applies only to kind = \"bearer\"");
    let text = plan(
        &[],
        "[auth]\nkind = \"bearer\"\ntoken_env = \"T\"\nscope = \"x\"\n",
    );
    assert_err(
        &text,
        "\"x\"",
        "auth",
        "applies only to kind = \"oauth2-client-credentials\"",
    );
    let text = plan(&[], "[auth]\ntoken_env = \"T\"\n");
    assert_err(&text, "\"T\"", "auth.kind", "expected kind = \"bearer\" or");
    let text = plan(&[], "[auth]\nkind = \"bearer\"\n");
    assert_err(&text, "[auth]", "auth.token_env", "missing required key");
    let text = plan(
        &[],
        "[auth]\nkind = \"bearer\"\ntoken_env = \"T\"\nuser = \"x\"\n",
    );
    assert_err(&text, "user", "auth.user", "unknown key `user`");
}

#[test]
fn step_thresholds() {
    let text = plan(
        &[],
        "[thresholds]\n\"steps.a.latency.p95\" = \"< 800ms\"\n\"steps.a.errors\" = \"== 0\"\n\"steps.a.throttled_ratio\" = { expr = \"< 0.1\", abort_on_fail = true, grace = \"10s\" }\n\"errors\" = { expr = \"== 0\" }\n",
    );
    let t = parse(&text, "t").unwrap().thresholds;
    assert_eq!(t[0].step.as_deref(), Some("a"));
    assert_eq!(t[0].metric, Metric::Latency(Stat::Percentile(95.0)));
    assert_eq!(t[0].expr, "steps.a.latency.p95 < 800ms");
    assert_eq!(t[0].abort, None);
    assert_eq!(t[1].metric, Metric::Count(CountKind::Errors));
    assert_eq!(t[2].metric, Metric::Ratio(CountKind::Throttled));
    assert_eq!(
        t[2].abort,
        Some(AbortOnFail {
            grace: Duration::from_secs(10)
        })
    );
    assert_eq!((t[3].step.as_deref(), t[3].abort), (None, None));
    // A step name with a dot: the longest name that fits wins.
    let text = plan(
        &[("name = \"a\"", "name = \"a.b\"")],
        "[thresholds]\n\"steps.a.b.errors\" = { expr = \"== 0\", abort_on_fail = true }\n",
    );
    let t = parse(&text, "t").unwrap().thresholds;
    assert_eq!(
        (t[0].step.as_deref(), t[0].abort),
        (
            Some("a.b"),
            Some(AbortOnFail {
                grace: Duration::ZERO
            })
        )
    );
}

#[test]
fn threshold_errors() {
    let th = |entry: &str| plan(&[], &format!("[thresholds]\n{entry}\n"));
    let text = th("\"steps.nope.errors\" = \"== 0\"");
    assert_err(
        &text,
        "\"steps.nope.errors\"",
        "thresholds.\"steps.nope.errors\"",
        "unknown step \"nope\" in `steps.<step>.<metric>`, expected one of \"a\"",
    );
    let text = th("\"steps.a.bogus\" = \"== 0\"");
    assert_err(
        &text,
        "\"steps.a.bogus\"",
        "thresholds.\"steps.a.bogus\"",
        "unknown metric `bogus`",
    );
    let text = th("\"steps.a.errors\" = \"== x\"");
    assert_err(
        &text,
        "\"== x\"",
        "thresholds.\"steps.a.errors\"",
        "expected an operator",
    );
    let text = th("\"errors\" = { expr = \"=< 0\" }");
    assert_err(
        &text,
        "\"=< 0\"",
        "thresholds.errors.expr",
        "expected an operator",
    );
    let text = th("\"errors\" = { expr = \"== 0\", grace = \"5s\" }");
    assert_err(
        &text,
        "\"5s\"",
        "thresholds.errors.grace",
        "applies only with abort_on_fail = true",
    );
    let text = th("\"errors\" = { expr = \"== 0\", abort_on_fail = false, grace = \"5s\" }");
    assert_err(
        &text,
        "\"5s\"",
        "thresholds.errors.grace",
        "applies only with abort_on_fail = true",
    );
    let text = th("\"errors\" = { expr = \"== 0\", abort_on_fail = true, grace = \"soon\" }");
    assert_err(
        &text,
        "\"soon\"",
        "thresholds.errors.grace",
        "expected a duration",
    );
    let text = th("\"errors\" = { expr = \"== 0\", abort = true }");
    assert_err(
        &text,
        "abort",
        "thresholds.errors.abort",
        "unknown key `abort`",
    );
    let text = th("\"errors\" = { abort_on_fail = true }");
    let e = common::err(&text);
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        ("thresholds.errors.expr", "missing required key")
    );
    let text = th("\"errors\" = 0");
    assert_err(
        &text,
        "0\n",
        "thresholds.errors",
        "expected a string such as",
    );
}
