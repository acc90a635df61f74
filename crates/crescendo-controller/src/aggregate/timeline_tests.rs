//! The window of full intervals stays bounded, closed seconds reach the files, and a
//! snapshot that arrives after its second closed is counted once.

use crescendo_metrics::StepSnapshot;

use super::super::{Aggregate, ok_stats};
use super::CLOSE_AFTER_S;
use crate::messages::Snapshot;

/// Agent snapshot `seq` covering second `seq - 1`: `n` requests on each of 3 steps.
fn snapshot(seq: u64, n: u64) -> Snapshot {
    let latencies: Vec<u64> = (1..=n).collect();
    Snapshot {
        seq,
        start_ms: (seq - 1) * 1000,
        end_ms: seq * 1000,
        offered: n,
        steps: ["login", "browse", "buy"]
            .into_iter()
            .map(|step| StepSnapshot {
                step: step.into(),
                auxiliary: false,
                stats: ok_stats(&latencies),
            })
            .collect(),
        ..Default::default()
    }
}

fn files(agg: &Aggregate) -> (String, String) {
    let (mut hlog, mut csv) = (Vec::new(), Vec::new());
    agg.timeline.write_hlog(&mut hlog).expect("hlog lines");
    agg.timeline.write_csv(&mut csv).expect("csv rows");
    let text = |b| String::from_utf8(b).expect("UTF-8");
    (text(hlog), text(csv))
}

#[test]
fn only_a_short_window_of_seconds_is_kept_in_full() {
    let mut agg = Aggregate::default();
    let seconds = 600;
    for seq in 1..=seconds {
        for agent in ["a", "b", "c"] {
            assert!(agg.merge(agent, &snapshot(seq, 4)).unwrap());
        }
        let open = agg.timeline.open_seconds() as u64;
        assert!(open <= CLOSE_AFTER_S, "{open} seconds open at {seq}");
    }
    let rows = agg.timeline.rows();
    assert_eq!(rows.len() as u64, seconds);
    assert!(
        rows.iter()
            .all(|r| r.requests == 3 * 3 * 4 && r.offered == 12)
    );
    assert!(rows.windows(2).all(|w| w[0].t + 1 == w[1].t));
    let (hlog, csv) = files(&agg);
    assert_eq!(hlog.lines().count() as u64, seconds * 3);
    assert_eq!(csv.lines().count() as u64, seconds * 3);
    assert!(csv.starts_with("0,browse,12,12,12,0,0,"), "{csv}");
    assert!(hlog.starts_with("Tag=browse,0.000,1.000,"), "{hlog}");
    assert_eq!(agg.timeline.late_snapshots, 0);
}

#[test]
fn a_snapshot_after_its_second_closed_is_counted_once_as_a_late_line() {
    let mut agg = Aggregate::default();
    for seq in 1..=20 {
        agg.merge("a", &snapshot(seq, 2)).unwrap();
        // Agent b's second 3 (seq 4) is held back, as over a reconnect.
        if seq != 4 {
            agg.merge("b", &snapshot(seq, 5)).unwrap();
        }
    }
    assert!(agg.merge("b", &snapshot(4, 5)).unwrap(), "merged late");
    assert!(
        !agg.merge("b", &snapshot(4, 5)).unwrap(),
        "a resend is a duplicate"
    );
    assert_eq!(agg.timeline.late_snapshots, 1);
    assert_eq!(agg.total().counters.requests, 20 * 3 * (2 + 5));
    let rows = agg.timeline.rows();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[3].t, 3);
    assert_eq!((rows[3].requests, rows[3].offered), (3 * (2 + 5), 7));
    let (hlog, csv) = files(&agg);
    let second_3: Vec<&str> = csv.lines().filter(|l| l.starts_with("3,")).collect();
    assert_eq!(second_3.len(), 6, "{csv}");
    assert_eq!(
        second_3
            .iter()
            .map(|l| l.split(',').nth(3).unwrap().parse::<u64>().unwrap())
            .sum::<u64>(),
        3 * (2 + 5)
    );
    assert_eq!(
        hlog.lines()
            .filter(|l| l.starts_with("Tag=login,3.000,"))
            .count(),
        2
    );
}
