//! The webhook (`serve --notify URL`): one JSON POST per finished run (a scheduled
//! time recorded `not-started` included), with the
//! verdict, the headline figures and the comparison with the baseline. Retried with
//! backoff (1 s, 2 s, 4 s, 8 s: five tries, 5 s each); every try is written to
//! `DIR/runs/<id>/notify.json`. A webhook that fails never fails the run.
//!
//! The body (`"event": "run.finished"`):
//! `{"event", "run": {id, plan_name, state, origin, scheduled_at, started_at, ended_at,
//! reason, exit_code, …}, "headline": {requests, ok, throttled, errors, throttled_ratio,
//! goodput_rps, latency_p50_ms, latency_p99_ms}, "comparison": {outcome, baseline_run,
//! details} | null}`.

use std::path::Path;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use crescendo_store::RunRecord;
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

use super::records::run_json;
use super::{Db, ServiceSettings};

/// Tries before giving up.
const TRIES: u32 = 5;
/// Each try's timeout.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tell the webhook (if there is one) that run `id` finished, as its record now
/// says: on `tracker`, so the service waits for it before it exits. Every way a run
/// finishes comes here: run to its end, not started, interrupted by a crash.
pub(super) fn announce(db: &Db, settings: &ServiceSettings, tracker: &TaskTracker, id: String) {
    let Some(url) = settings.notify.clone() else {
        return;
    };
    let db = db.clone();
    let dir = settings.data.join("runs").join(&id);
    tracker.spawn(async move {
        match db.call(move |s| s.run(&id)).await {
            Ok(Some(record)) => deliver(&url, &body(&record), &dir).await,
            Ok(None) => {}
            Err(e) => tracing::error!("webhook: reading the run: {e}"),
        }
    });
}

/// The webhook body for a finished run.
pub(super) fn body(record: &RunRecord) -> Value {
    let mut run = run_json(record, false);
    let summary = run
        .as_object_mut()
        .and_then(|o| o.remove("summary"))
        .unwrap_or(Value::Null);
    let comparison = run
        .as_object_mut()
        .and_then(|o| o.remove("comparison"))
        .unwrap_or(Value::Null);
    let totals = &summary["totals"];
    json!({
        "event": "run.finished",
        "run": run,
        "headline": {
            "requests": totals["requests"],
            "ok": totals["ok"],
            "throttled": totals["throttled"],
            "errors": totals["errors"],
            "throttled_ratio": summary["throttled_ratio"],
            "goodput_rps": summary["goodput_rps"],
            "latency_p50_ms": summary["latency_ms"]["p50"],
            "latency_p99_ms": summary["latency_ms"]["p99"],
        },
        "comparison": comparison,
    })
}

/// POST `body` to `url` until it is taken (a 2xx), at most [`TRIES`] times; record the
/// tries in `dir/notify.json`.
pub(super) async fn deliver(url: &str, body: &Value, dir: &Path) {
    let client = match reqwest::Client::builder().timeout(TRY_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return tracing::error!("webhook: {e}"),
    };
    let mut tries = Vec::new();
    let mut delivered = false;
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=TRIES {
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let outcome = match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => {
                delivered = true;
                json!({"at": at, "status": r.status().as_u16()})
            }
            Ok(r) => json!({"at": at, "status": r.status().as_u16()}),
            // Without the URL: reqwest names it in its errors.
            Err(e) => json!({"at": at, "error": e.without_url().to_string()}),
        };
        tries.push(outcome);
        if delivered {
            break;
        }
        if attempt < TRIES {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    let shown = shown(url);
    if !delivered {
        tracing::warn!(webhook = %shown, "not delivered after {TRIES} tries (see notify.json)");
    }
    let record = json!({"webhook": shown, "delivered": delivered, "tries": tries});
    let _ = std::fs::create_dir_all(dir);
    if let Err(e) = std::fs::write(dir.join("notify.json"), format!("{record:#}\n")) {
        tracing::warn!("webhook: writing notify.json: {e}");
    }
}

/// The webhook as logs and records show it: scheme and host only (its path and query
/// often carry a token).
fn shown(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "(a webhook)".to_owned(),
        |u| format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
    )
}
