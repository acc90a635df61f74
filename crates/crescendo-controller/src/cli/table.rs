//! How the service's records print: `--output json` as they came, `table` (the
//! default) as aligned columns.

use serde_json::Value;

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Output {
    Table,
    Json,
}

/// Print `rows` under `headers`, each column as wide as its widest cell.
pub(super) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

pub(super) fn print_runs(output: Output, runs: &[Value]) {
    if output == Output::Json {
        println!("{}", Value::Array(runs.to_vec()));
        return;
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let origin = match r["origin"]["kind"].as_str() {
                Some("schedule") => format!("schedule {}", text(&r["origin"]["name"])),
                Some("rerun") => format!("rerun of {}", text(&r["origin"]["of"])),
                _ => text(&r["origin"]["kind"]),
            };
            let vs = if r["baseline"].as_bool() == Some(true) {
                "(baseline)".to_owned()
            } else {
                text(&r["comparison"]["outcome"])
            };
            vec![
                text(&r["id"]),
                text(&r["plan_name"]),
                text(&r["state"]),
                origin,
                text(&r["started_at"]),
                r["summary"]["totals"]["requests"]
                    .as_u64()
                    .unwrap_or(0)
                    .to_string(),
                vs,
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "PLAN", "STATE", "ORIGIN", "STARTED", "REQUESTS", "BASELINE",
        ],
        &rows,
    );
}

/// A JSON string as shown in a table (`-` for null).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    }
}

pub(super) fn print_trend(output: Output, runs: &[Value]) {
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let s = &r["summary"];
            serde_json::json!({
                "id": r["id"],
                "started_at": r["started_at"],
                "state": r["state"],
                "p50_ms": s["latency_ms"]["p50"],
                "p99_ms": s["latency_ms"]["p99"],
                "goodput_rps": s["goodput_rps"],
                "throttled_ratio": s["throttled_ratio"],
                "comparison": r["comparison"]["outcome"],
            })
        })
        .collect();
    if output == Output::Json {
        println!("{}", Value::Array(rows));
        return;
    }
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.2}"));
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                text(&r["id"]),
                text(&r["started_at"]),
                text(&r["state"]),
                num(&r["p50_ms"]),
                num(&r["p99_ms"]),
                num(&r["goodput_rps"]),
                r["throttled_ratio"]
                    .as_f64()
                    .map_or("-".to_owned(), |x| format!("{:.2}%", x * 100.0)),
                text(&r["comparison"]),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "STARTED",
            "STATE",
            "P50 MS",
            "P99 MS",
            "GOODPUT/S",
            "THROTTLED",
            "VS BASELINE",
        ],
        &table,
    );
}
