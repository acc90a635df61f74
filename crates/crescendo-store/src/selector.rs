//! [`Selector`]: which agents may take a run, as `key=value` labels that must all match.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Agent labels a run asks for: an agent qualifies when it carries every pair.
///
/// Written `region=eu-west-1,zone=a`; the empty text is the empty selector, which every
/// agent matches. Keys and values are trimmed of surrounding spaces; a value may be empty
/// (`tier=`) but a key may not, and a value may not hold `,` (the pair separator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector(pub BTreeMap<String, String>);

/// Why a selector text was refused; each names the offending pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("selector pair {pair:?} has no '=': expected key=value, e.g. region=eu-west-1")]
    MissingEquals { pair: String },
    #[error("selector pair {pair:?} has an empty key: expected key=value, e.g. region=eu-west-1")]
    EmptyKey { pair: String },
    #[error("selector names key {key:?} twice")]
    DuplicateKey { key: String },
}

impl Selector {
    /// Parses `k=v,k=v`; empty pairs (a trailing comma, `,,`) are ignored.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut labels = BTreeMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                pair.split_once('=')
                    .ok_or_else(|| SelectorError::MissingEquals {
                        pair: pair.to_owned(),
                    })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(SelectorError::EmptyKey {
                    pair: pair.to_owned(),
                });
            }
            if labels
                .insert(key.to_owned(), value.trim().to_owned())
                .is_some()
            {
                return Err(SelectorError::DuplicateKey {
                    key: key.to_owned(),
                });
            }
        }
        Ok(Selector(labels))
    }

    /// True when `labels` holds every pair of the selector (extra labels are fine).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }

    /// True for the selector that every agent matches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    /// `k=v,k=v` in key order, the form [`Selector::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_pairs_and_prints_them_back_in_key_order() {
        let selector = Selector::parse(" zone=a , region=eu-west-1,").unwrap();
        assert_eq!(
            selector.0,
            labels(&[("region", "eu-west-1"), ("zone", "a")])
        );
        assert_eq!(selector.to_string(), "region=eu-west-1,zone=a");
        assert!(Selector::parse("").unwrap().is_empty());
        assert_eq!(Selector::parse("tier=").unwrap().0, labels(&[("tier", "")]));
    }

    #[test]
    fn refuses_missing_equals_empty_key_and_duplicates() {
        assert_eq!(
            Selector::parse("region=eu,zone").unwrap_err(),
            SelectorError::MissingEquals {
                pair: "zone".into()
            }
        );
        let empty = Selector::parse("=a").unwrap_err();
        assert_eq!(empty, SelectorError::EmptyKey { pair: "=a".into() });
        assert!(empty.to_string().contains("empty key"), "{empty}");
        assert_eq!(
            Selector::parse("zone=a,zone=b").unwrap_err().to_string(),
            "selector names key \"zone\" twice"
        );
    }

    #[test]
    fn matches_needs_every_pair_and_allows_extra_labels() {
        let selector = Selector::parse("region=eu-west-1,zone=a").unwrap();
        assert!(selector.matches(&labels(&[
            ("region", "eu-west-1"),
            ("zone", "a"),
            ("gpu", "no")
        ])));
        assert!(!selector.matches(&labels(&[("region", "eu-west-1")])));
        assert!(!selector.matches(&labels(&[("region", "eu-west-1"), ("zone", "b")])));
        assert!(Selector::default().matches(&BTreeMap::new()));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(
            map in prop::collection::btree_map("[a-z][a-z0-9./-]{0,8}", "[a-z0-9._-]{0,8}", 0..5)
        ) {
            let selector = Selector(map);
            let text = selector.to_string();
            prop_assert_eq!(Selector::parse(&text).unwrap(), selector.clone());
            prop_assert!(selector.matches(&selector.0));
        }
    }
}
