//! [`Selector`]: which agents may take a run, as `key=value` labels that must all match.

use std::collections::BTreeMap;
use std::fmt;

/// Agent labels a run asks for: an agent qualifies when it carries every pair.
///
/// The store keeps what it is given: the text form `region=eu-west-1,zone=a` is parsed
/// and checked (and matched against agents) by the controller with
/// `crescendo_plan::labels`, the one parser for labels and selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector(pub BTreeMap<String, String>);

impl Selector {
    /// True for the selector that every agent matches.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Selector {
    /// `k=v,k=v` in key order.
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

    #[test]
    fn prints_pairs_in_key_order() {
        let selector = Selector(BTreeMap::from([
            ("zone".to_owned(), "a".to_owned()),
            ("region".to_owned(), "eu-west-1".to_owned()),
        ]));
        assert_eq!(selector.to_string(), "region=eu-west-1,zone=a");
        assert_eq!(Selector::default().to_string(), "");
        assert!(Selector::default().is_empty());
    }
}
