//! How domain values sit in SQLite columns, both ways.
//!
//! - Times: UTC RFC 3339 text with nine fraction digits and `Z`
//!   (`2025-06-01T09:00:00.000000000Z`): fixed width, so text order is time order and
//!   `ORDER BY` needs no conversion; readable in the `sqlite3` shell; lossless.
//! - Words ([`RunState`](crate::RunState), [`Missed`](crate::Missed), …): their `as_str`.
//! - JSON: summaries, comparison details, agent id lists and selectors (an object, so a
//!   value may hold any character).
//!
//! A column that does not decode is a conversion error naming the column, the same as a
//! wrong SQL type.

use std::collections::BTreeMap;
use std::error::Error;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;
use rusqlite::types::Type;
use serde_json::Value;

use crate::selector::Selector;

/// A time as stored.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn opt_time_text(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(time_text)
}

/// A JSON array of strings, as stored.
pub(crate) fn strings_json(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

/// A selector, as stored: a JSON object.
pub(crate) fn selector_json(selector: &Selector) -> String {
    let object: serde_json::Map<String, Value> = selector
        .0
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Value::Object(object).to_string()
}

/// Reads a column of text and decodes it with `decode`.
fn get_decoded<T, E>(
    row: &Row<'_>,
    column: &str,
    decode: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<Option<T>>
where
    E: Error + Send + Sync + 'static,
{
    let index = row.as_ref().column_index(column)?;
    let Some(text) = row.get::<_, Option<String>>(index)? else {
        return Ok(None);
    };
    decode(&text)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

fn required<T>(row: &Row<'_>, column: &str, value: Option<T>) -> rusqlite::Result<T> {
    value.ok_or_else(|| {
        let index = row.as_ref().column_index(column).unwrap_or(usize::MAX);
        rusqlite::Error::InvalidColumnType(index, column.to_owned(), Type::Null)
    })
}

pub(crate) fn get_opt_time(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    get_decoded(row, column, |text| {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
    })
}

pub(crate) fn get_time(row: &Row<'_>, column: &str) -> rusqlite::Result<DateTime<Utc>> {
    let value = get_opt_time(row, column)?;
    required(row, column, value)
}

/// A word column read with the type's `FromStr`.
pub(crate) fn get_opt_word<T>(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: Error + Send + Sync + 'static,
{
    get_decoded(row, column, str::parse)
}

pub(crate) fn get_word<T>(row: &Row<'_>, column: &str) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: Error + Send + Sync + 'static,
{
    let value = get_opt_word(row, column)?;
    required(row, column, value)
}

pub(crate) fn get_opt_json(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<Value>> {
    get_decoded(row, column, |text| serde_json::from_str(text))
}

pub(crate) fn get_json(row: &Row<'_>, column: &str) -> rusqlite::Result<Value> {
    let value = get_opt_json(row, column)?;
    required(row, column, value)
}

pub(crate) fn get_strings(row: &Row<'_>, column: &str) -> rusqlite::Result<Vec<String>> {
    let value = get_decoded(row, column, |text| {
        serde_json::from_str::<Vec<String>>(text)
    })?;
    required(row, column, value)
}

pub(crate) fn get_selector(row: &Row<'_>, column: &str) -> rusqlite::Result<Selector> {
    let value = get_decoded(row, column, |text| {
        serde_json::from_str::<BTreeMap<String, String>>(text)
    })?;
    required(row, column, value).map(Selector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_text_is_fixed_width_so_text_order_is_time_order() {
        let whole = Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).unwrap();
        let later = whole + chrono::TimeDelta::nanoseconds(5);
        assert_eq!(time_text(whole), "2025-06-01T09:00:00.000000000Z");
        assert_eq!(time_text(whole).len(), time_text(later).len());
        assert!(time_text(whole) < time_text(later));
    }

    #[test]
    fn selector_json_keeps_any_character() {
        let selector = Selector(BTreeMap::from([("k".to_owned(), "a,b=c\"".to_owned())]));
        let back: BTreeMap<String, String> =
            serde_json::from_str(&selector_json(&selector)).unwrap();
        assert_eq!(back, selector.0);
    }
}
