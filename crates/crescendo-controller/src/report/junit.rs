//! `junit.xml`: the thresholds as a JUnit test suite, so CI systems (Jenkins, GitLab,
//! GitHub test reporters) show a rehearsal's verdict like any other test run. One
//! test case per threshold; a failed threshold carries a `<failure>` element, a step
//! threshold is classed under its step, and the threshold that aborted the run says so
//! in its failure (and the suite carries an `aborted` property).

use std::fmt::Write;

use super::verdict::Verdict;
use super::{Summary, escape};

pub(crate) fn render(s: &Summary) -> String {
    let failures = s.thresholds.iter().filter(|t| !t.ok).count();
    // A fault of the run itself (cancelled, interrupted, degraded, error) is one more
    // test case, in error, so no CI system reads the run as green.
    let fault = !matches!(
        s.outcome,
        Verdict::Passed | Verdict::Failed | Verdict::Aborted
    );
    let errors = usize::from(fault);
    let name = escape(&s.plan_name);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"crescendo\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">\n\
         \x20 <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\">\n\
         \x20   <properties><property name=\"run_id\" value=\"{run}\"/><property name=\"outcome\" value=\"{outcome}\"/>{aborted}</properties>\n",
        tests = s.thresholds.len() + errors,
        outcome = s.outcome.label().to_lowercase(),
        time = s.duration_s,
        run = escape(&s.run_id),
        aborted = s.aborted.as_ref().map_or(String::new(), |a| format!(
            "<property name=\"aborted\" value=\"{}\"/>",
            escape(&a.reason)
        )),
    );
    for t in &s.thresholds {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{name}.thresholds{}\" time=\"0\"",
            escape(&t.expr),
            t.step
                .as_ref()
                .map_or(String::new(), |step| format!(".{}", escape(step)))
        );
        if t.ok {
            out.push_str("/>\n");
        } else {
            let _ = write!(
                out,
                ">\n      <failure message=\"{msg}\" type=\"threshold\">{msg}</failure>\n    </testcase>\n",
                msg = escape(&failure_message(s, t)),
            );
        }
    }
    if fault {
        let _ = write!(
            out,
            "    <testcase name=\"run\" classname=\"{name}\" time=\"0\">\n      <error message=\"{msg}\" type=\"{kind}\">{msg}</error>\n    </testcase>\n",
            kind = s.outcome.label().to_lowercase(),
            msg = escape(&s.outcome_reasons.join("; ")),
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Why a threshold failed, naming the abort when it stopped the run.
fn failure_message(s: &Summary, t: &crate::thresholds::ThresholdResult) -> String {
    match &s.aborted {
        Some(a) if t.aborted_run => format!(
            "{} failed: measured {} at {:.1} s and aborted the run (abort_on_fail)",
            t.expr, t.value, a.at_s
        ),
        _ => format!("{} failed: measured {}", t.expr, t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn one_testcase_per_threshold_and_a_failure_for_each_failed_one() {
        let xml = render(&fixture::summary());
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains("<testsuite name=\"fixture &lt;&amp;&gt;\" tests=\"2\" failures=\"1\""),
            "the suite is named after the plan, escaped: {xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(
            xml.contains("<testcase name=\"latency.p99 &lt; 800ms\" classname=\"fixture &lt;&amp;&gt;.thresholds\" time=\"0\"/>"),
            "{xml}"
        );
        let failed = xml.find("name=\"errors == 0\"").expect("the failed case");
        let failure = xml.find("<failure message=\"errors == 0 failed: measured 10\"");
        assert!(failure.is_some_and(|f| f > failed), "{xml}");
        assert!(xml.contains("time=\"10.000\""), "{xml}");
        // Well-formed enough for any reader: every opened element is closed.
        for tag in ["testsuites", "testsuite", "properties"] {
            assert_eq!(
                xml.matches(&format!("<{tag}")).count() - usize::from(tag == "testsuite"),
                xml.matches(&format!("</{tag}>")).count(),
                "{tag}: {xml}"
            );
        }
    }

    #[test]
    fn step_thresholds_and_aborts_show() {
        let mut s = fixture::summary();
        s.thresholds[1].step = Some("update".into());
        s.thresholds[1].aborted_run = true;
        s.aborted = Some(crate::thresholds::Aborted {
            reason: "threshold errors == 0 failed at 3.0 s (measured 10.000)".into(),
            at_s: 3.0,
            threshold: "errors == 0".into(),
            value: 10.0,
        });
        let xml = render(&s);
        assert!(
            xml.contains("classname=\"fixture &lt;&amp;&gt;.thresholds.update\""),
            "{xml}"
        );
        assert!(
            xml.contains("measured 10 at 3.0 s and aborted the run (abort_on_fail)"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<property name=\"aborted\" value=\"threshold errors == 0 failed at 3.0 s"
            ),
            "{xml}"
        );
    }

    #[test]
    fn a_plan_without_thresholds_is_an_empty_passing_suite() {
        let mut s = fixture::summary();
        s.thresholds.clear();
        let xml = render(&s);
        assert!(xml.contains("tests=\"0\" failures=\"0\""), "{xml}");
        assert!(!xml.contains("<testcase"), "{xml}");
    }
}
