//! Coordinated omission: a 1 s stall of the API must show in the latency the open
//! model reports, measured from each request's intended send time. A closed-loop
//! client (one VU, no schedule) under the same stall sends nothing while it waits, so
//! its latency omits the stall: that is the error the open model corrects.
//!
//! The stall starts once flowsim has answered [`BEFORE_STALL`] requests of the run, so it
//! lands inside the run however slowly the run gets going.

use crescendo_testkit::{Fleet, FlowsimConfig, stat};

/// Requests flowsim has accepted before the stall begins: about a second into the 4 s
/// run (100 iterations/s open; one VU with 10 ms think time closed).
const BEFORE_STALL: u64 = 100;

fn plan(load: &str) -> String {
    format!(
        r#"
name = "stall"
[target]
base_url = "{{{{BASE_URL}}}}"
timeout = "5s"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-1"
body = '{{"name": "x"}}'
[load]
{load}
[backoff]
policy = "none"
"#
    )
}

async fn run_with_stall(load: &str) -> crescendo_controller::report::Summary {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 1).await.unwrap();
    let text = plan(load);
    let stall = async {
        fleet
            .wait_for_sim("the run's first requests", |s| {
                stat(s, "accepted") >= BEFORE_STALL
            })
            .await
            .unwrap();
        fleet.stall(1000).await.unwrap();
        // The stall landed: flowsim is holding the run's responses.
        fleet
            .wait_for_sim("a response held by the stall", |s| stat(s, "stalled") > 0)
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(fleet.run(&text, 1), stall);
    result.unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_intended_time_latency_but_not_in_a_closed_loop() {
    let open = run_with_stall(
        r#"max_in_flight = 500
stages = [ { duration = "4s", target = 100 } ]"#,
    )
    .await;
    assert!(open.totals.ok > 350, "{:?}", open.totals);
    assert!(
        open.latency_ms.p99 >= 500.0,
        "intended-time p99 {} ms must show the 1 s stall",
        open.latency_ms.p99
    );
    assert_eq!(open.totals.dropped, 0);

    let closed = run_with_stall(
        r#"model = "closed"
think_time = "10ms"
stages = [ { duration = "4s", target = 1 } ]"#,
    )
    .await;
    assert!(closed.totals.ok > 100, "{:?}", closed.totals);
    assert!(
        closed.latency_ms.max >= 500.0,
        "the stalled request itself is measured: {}",
        closed.latency_ms.max
    );
    assert!(
        closed.latency_ms.p99 < 500.0,
        "a closed loop hides the stall: p99 {} ms",
        closed.latency_ms.p99
    );
}
