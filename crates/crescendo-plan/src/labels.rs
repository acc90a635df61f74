//! Agent labels and run selectors: `region=eu-west-1,zone=a`.
//!
//! An agent says what it is with labels (`crescendo-agent --labels`); a run names the
//! agents it wants with a selector of the same form, and an agent matches when it
//! carries every pair. One syntax and one set of limits for both, checked where the
//! text comes in (the agent's flag, the operator's `--selector`) and again where a
//! network peer sends it (the controller's edge), so a label set is always small.

use std::collections::BTreeMap;

/// Labels, or a selector: key → value, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// At most this many pairs.
pub const MAX_LABELS: usize = 32;
/// At most this many characters in a key.
pub const MAX_LABEL_KEY: usize = 63;
/// At most this many characters in a value.
pub const MAX_LABEL_VALUE: usize = 128;

/// Labels that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("expected key=value, got `{0}`")]
    NoEquals(String),
    #[error("label `{0}` is given twice")]
    Duplicate(String),
    #[error(
        "label key `{0}` must be 1-{MAX_LABEL_KEY} characters of letters, digits, '-', '_', '.', '/'"
    )]
    BadKey(String),
    #[error(
        "label value `{value}` of `{key}` must be 0-{MAX_LABEL_VALUE} characters of letters, digits, '-', '_', '.', ':'"
    )]
    BadValue { key: String, value: String },
    #[error("expected at most {MAX_LABELS} labels, got {0}")]
    TooMany(usize),
}

/// Parse `k=v,k=v` (spaces around pairs ignored; empty text is no labels).
pub fn parse_labels(text: &str) -> Result<Labels, LabelsError> {
    let mut labels = Labels::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| LabelsError::NoEquals(pair.to_owned()))?;
        let (key, value) = (key.trim(), value.trim());
        if labels.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(LabelsError::Duplicate(key.to_owned()));
        }
    }
    check_labels(&labels)?;
    Ok(labels)
}

/// Check labels that arrived already split (from the network).
pub fn check_labels(labels: &Labels) -> Result<(), LabelsError> {
    if labels.len() > MAX_LABELS {
        return Err(LabelsError::TooMany(labels.len()));
    }
    for (key, value) in labels {
        let key_ok = !key.is_empty()
            && key.chars().count() <= MAX_LABEL_KEY
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !key_ok {
            return Err(LabelsError::BadKey(shown(key)));
        }
        let value_ok = value.chars().count() <= MAX_LABEL_VALUE
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !value_ok {
            return Err(LabelsError::BadValue {
                key: key.clone(),
                value: shown(value),
            });
        }
    }
    Ok(())
}

/// Whether `labels` carry every pair of `selector` (an empty selector matches all).
pub fn matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `k=v,k=v`, the form [`parse_labels`] reads.
pub fn format_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A bad key or value as shown in an error: escaped, and cut short.
fn shown(text: &str) -> String {
    text.chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let labels = parse_labels(" region=eu-west-1, zone=a ").unwrap();
        assert_eq!(format_labels(&labels), "region=eu-west-1,zone=a");
        assert!(parse_labels("").unwrap().is_empty());
        assert_eq!(parse_labels("tier=").unwrap()["tier"], "");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert_eq!(
            parse_labels("region"),
            Err(LabelsError::NoEquals("region".into()))
        );
        assert_eq!(
            parse_labels("a=1,a=2"),
            Err(LabelsError::Duplicate("a".into()))
        );
        assert!(matches!(parse_labels("=x"), Err(LabelsError::BadKey(_))));
        let err = parse_labels("zone=a b").unwrap_err().to_string();
        assert!(err.contains("`a b` of `zone`"), "{err}");
        let many = (0..40).map(|i| format!("k{i}=v")).collect::<Vec<_>>();
        assert_eq!(parse_labels(&many.join(",")), Err(LabelsError::TooMany(40)));
        let newline = Labels::from([("k\n".to_owned(), "v".to_owned())]);
        let err = check_labels(&newline).unwrap_err().to_string();
        assert!(err.contains("k\\n") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_selector_matches_agents_that_carry_every_pair() {
        let agent = parse_labels("region=eu,zone=a").unwrap();
        assert!(matches(&Labels::new(), &agent));
        assert!(matches(&parse_labels("region=eu").unwrap(), &agent));
        assert!(!matches(&parse_labels("region=eu,zone=b").unwrap(), &agent));
        assert!(!matches(&parse_labels("tier=x").unwrap(), &agent));
    }
}
