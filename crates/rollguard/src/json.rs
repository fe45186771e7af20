//! How every JSON document is read: error paths, and objects whose keys are unique.
//!
//! # Paths
//!
//! An error's path names one place in the document, and reads back into exactly one
//! list of keys and indices, whatever the keys hold:
//!
//! - a key that is an ASCII identifier (`[A-Za-z_][A-Za-z0-9_]*`, as every field name
//!   of the formats is) is written as it is, after a `.` unless it comes first:
//!   `samples[3].events`, `gates[0].rule.max`;
//! - any other key is written in brackets as a JSON string, as jq and JSONPath do:
//!   `versions[0].components["a.b"]`, `["say \"hi\""]`, `[""]`, `["\u001f"]`
//!   (control characters escaped, other characters as they are);
//! - an array index is written in brackets: `samples[3]`.
//!
//! The empty path is the whole document.
//!
//! # Unique keys
//!
//! A key may appear once per object in every document (configs, inputs, snapshots,
//! scenarios); a repeated key is refused with `duplicate_key` at its path, never read
//! as "last wins". Objects read into a derived struct are checked by serde itself
//! ("duplicate field"); the free-form ones, the objects of the `kind`-tagged enums
//! ([`crate::tagged`], read through [`UniqueValue`]) and the maps of components
//! ([`unique_map`]), are checked here, by the same `Deserialize` impls on the untracked
//! fast path and on the tracked one. [`crate::Error::from_json`] turns both messages
//! into the one code. A [`serde_json::Value`] handed over by a binding cannot hold a
//! repeated key: its objects are maps.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

// ------------------------------------------------------------------------- paths

/// Whether a key is written bare in a path.
fn is_identifier(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends the segment of `key` to `path`.
pub(crate) fn push_key(path: &mut String, key: &str) {
    if is_identifier(key) {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        // Serializing a string cannot fail.
        path.push_str(&serde_json::to_string(key).unwrap_or_default());
        path.push(']');
    }
}

/// The path of `key` inside `parent` (`components` + `model` = `components.model`,
/// `components` + `a.b` = `components["a.b"]`), as the core writes every path (see the
/// module docs). Bindings that convert native objects use it for their own errors.
pub fn key_path(parent: &str, key: &str) -> String {
    let mut path = parent.to_string();
    push_key(&mut path, key);
    path
}

/// Joins two paths (`steps[0]` + `weight` = `steps[0].weight`; `components` +
/// `["a.b"]` = `components["a.b"]`).
pub(crate) fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_string(),
        (false, true) => parent.to_string(),
        (false, false) if child.starts_with('[') => format!("{parent}{child}"),
        (false, false) => format!("{parent}.{child}"),
    }
}

/// Writes a path tracked by serde_path_to_error, leaving out its first `skip`
/// segments. A segment it could not track (`?`) ends the path there: what comes before
/// is still right.
pub(crate) fn tracked_path(path: &serde_path_to_error::Path, skip: usize) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter().skip(skip) {
        match segment {
            Segment::Seq { index } => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            Segment::Map { key } | Segment::Enum { variant: key } => push_key(&mut out, key),
            Segment::Unknown => break,
        }
    }
    out
}

// ------------------------------------------------------------ messages with paths

/// Marks a message that starts with a path relative to the value being parsed (used
/// where serde's own path tracking cannot see: inside a tagged enum, at a key).
/// Rendered paths never hold a control character, so the marks cannot be confused
/// with a key.
const PATH_MARK: char = '\u{1e}';
/// Separates that path from the message.
const PATH_END: char = '\u{1f}';

/// Splits a marked message into (relative path, message).
pub(crate) fn split_marked(message: &str) -> Option<(&str, &str)> {
    message.strip_prefix(PATH_MARK)?.split_once(PATH_END)
}

/// An error whose message carries `path`, relative to the value being parsed. A
/// message that is already marked carries a path relative to `path`.
pub(crate) fn marked<E: de::Error>(path: &str, message: &str) -> E {
    let (path, message) = match split_marked(message) {
        Some((inner, message)) => (join(path, inner), message),
        None => (path.to_string(), message),
    };
    E::custom(format!("{PATH_MARK}{path}{PATH_END}{message}"))
}

/// How a repeated key's message starts.
const DUPLICATE_KEY: &str = "duplicate key";

/// The error for a repeated `key`, marked with the key's path.
pub(crate) fn duplicate<E: de::Error>(key: &str) -> E {
    marked(
        &key_path("", key),
        &format!("{DUPLICATE_KEY}: a key appears once per object"),
    )
}

/// If `message` reports a repeated key (ours or serde's "duplicate field `name`"),
/// the path of that key relative to the message's path.
pub(crate) fn duplicate_of(message: &str) -> Option<String> {
    if message.starts_with(DUPLICATE_KEY) {
        // Ours: the key is already in the marked path.
        return Some(String::new());
    }
    // serde's derived structs: a field name, which is an identifier.
    let name = message
        .strip_prefix("duplicate field `")?
        .split_once('`')?
        .0;
    Some(key_path("", name))
}

/// Control characters of a message written as escapes (a key in serde's "unknown
/// field" message would otherwise reach a terminal or a log as it is).
pub(crate) fn printable(message: &str) -> String {
    if !message.chars().any(char::is_control) {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

// ------------------------------------------------------------------ unique keys

/// A JSON value read like [`serde_json::Value`], but refusing a repeated key in any
/// of its objects, at any depth.
pub(crate) struct UniqueValue(pub(crate) Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(UniqueValue)
    }
}

/// serde_json's own value visitor, with the check in `visit_map`.
struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Number::deserialize(de::value::I128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Number::deserialize(de::value::U128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        UniqueValue::deserialize(d).map(|v| v.0)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(UniqueValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value::<UniqueValue>()?.0);
                }
                serde_json::map::Entry::Occupied(slot) => return Err(duplicate(slot.key())),
            }
        }
        Ok(Value::Object(out))
    }
}

/// The first key that some object of `text` repeats, as a path element (`c`,
/// `["a.b"]`): what every document parser of this crate refuses with `duplicate_key`.
/// `None` when every object's keys are unique, or the text is not JSON.
pub fn repeated_key(text: &str) -> Option<String> {
    let message = serde_json::from_str::<UniqueValue>(text).err()?.to_string();
    let (path, rest) = split_marked(&message)?;
    rest.starts_with(DUPLICATE_KEY).then(|| path.to_string())
}

/// Reads a map of string keys (`#[serde(deserialize_with = "crate::json::unique_map")]`),
/// refusing a repeated key instead of keeping the last.
pub(crate) fn unique_map<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct MapVisitor<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                match out.entry(key) {
                    btree_map::Entry::Vacant(slot) => {
                        slot.insert(map.next_value()?);
                    }
                    btree_map::Entry::Occupied(slot) => return Err(duplicate(slot.key())),
                }
            }
            Ok(out)
        }
    }

    d.deserialize_map(MapVisitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_keys_are_bare_and_others_are_json_strings() {
        assert_eq!(key_path("", "gates"), "gates");
        assert_eq!(key_path("a", "_b9"), "a._b9");
        assert_eq!(key_path("a", "9b"), r#"a["9b"]"#);
        assert_eq!(key_path("a", "a.b"), r#"a["a.b"]"#);
        assert_eq!(key_path("", ""), r#"[""]"#);
        assert_eq!(key_path("", "\u{1f}\n"), r#"["\u001f\n"]"#);
        assert_eq!(key_path("a", "é"), r#"a["é"]"#);
        assert_eq!(join("components", r#"["a.b"]"#), r#"components["a.b"]"#);
    }

    #[test]
    fn unique_values_refuse_a_repeated_key_at_any_depth() {
        let ok: UniqueValue = serde_json::from_str(r#"{"a": [{"b": 1, "c": null}]}"#).unwrap();
        assert_eq!(ok.0, serde_json::json!({"a": [{"b": 1, "c": null}]}));
        let e = serde_json::from_str::<UniqueValue>(r#"{"a": [{"b": 1, "b": 2}]}"#)
            .err()
            .unwrap()
            .to_string();
        let (path, message) = split_marked(&e).unwrap();
        assert_eq!(path, "b");
        assert_eq!(duplicate_of(message), Some(String::new()));
    }

    #[test]
    fn messages_lose_their_control_characters() {
        assert_eq!(
            printable("unknown field `a\u{1f}b`"),
            "unknown field `a\\u{1f}b`"
        );
        assert_eq!(printable("plain"), "plain");
    }
}
