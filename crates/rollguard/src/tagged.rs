//! Internally tagged enums (`{"kind": "tick", "at": 5}`) that keep error paths.
//!
//! serde's own internally tagged enums buffer their content before choosing a variant,
//! and an error inside loses the field's path (`{"kind": "tick", "at": "x"}` would be
//! blamed on the whole input). The enums users write (inputs, rules, strategies, steps)
//! are therefore derived externally tagged behind `#[serde(remote = "Self")]` and
//! converted here to and from the canonical form; a failure inside keeps its path,
//! which travels in the error message to [`crate::Error::from_json`] (any depth of
//! nesting; see [`crate::json`] for paths and for the check of repeated keys).

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Map, Value};

use crate::json::{UniqueValue, marked, tracked_path};

/// Deserializes a value of the state whose type cannot deny unknown fields itself (an
/// `Action`, which decisions flatten; an internally tagged enum's unit variant), and
/// refuses the fields its canonical form does not have.
pub(crate) fn strict<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let value = Value::deserialize(d)?;
    let t = T::deserialize(&value).map_err(D::Error::custom)?;
    let canonical = serde_json::to_value(&t).map_err(D::Error::custom)?;
    if let (Some(given), Some(known)) = (value.as_object(), canonical.as_object())
        && let Some(field) = given.keys().find(|k| !known.contains_key(*k))
    {
        return Err(D::Error::custom(format!("unknown field `{field}`")));
    }
    Ok(t)
}

/// Deserializes `{"<tag>": "variant", ...fields}` through the externally tagged
/// `external` deserializer.
pub(crate) fn deserialize<'de, D, T>(
    d: D,
    tag: &'static str,
    external: impl FnOnce(Value) -> Result<T, serde_path_to_error::Error<serde_json::Error>>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    // Read through `UniqueValue`: a repeated key anywhere inside is refused.
    let mut map = match UniqueValue::deserialize(d)?.0 {
        Value::Object(map) => map,
        _ => {
            return Err(D::Error::custom(format!(
                "expected an object with a `{tag}` field"
            )));
        }
    };
    let variant = match map.remove(tag) {
        Some(Value::String(v)) => v,
        Some(_) => return Err(marked(tag, "must be a string")),
        None => return Err(D::Error::missing_field(tag)),
    };
    let mut outer = Map::new();
    outer.insert(variant.clone(), Value::Object(map));
    external(Value::Object(outer)).map_err(|e| {
        // A path that starts at the variant (the derived enum's own segment, not part
        // of the canonical document) is relative to this object once that segment is
        // dropped; anything else is the enum itself (an unknown variant): blame the tag.
        let relative = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Enum { .. }) => tracked_path(e.path(), 1),
            _ => tag.to_string(),
        };
        marked(&relative, &e.into_inner().to_string())
    })
}

/// Serializes through the externally tagged `external` serializer into the canonical
/// internally tagged form.
pub(crate) fn serialize<S: Serializer>(
    s: S,
    tag: &'static str,
    external: Result<Value, serde_json::Error>,
) -> Result<S::Ok, S::Error> {
    let value = external.map_err(serde::ser::Error::custom)?;
    let (variant, fields) = match value {
        Value::String(v) => (v, Map::new()),
        Value::Object(outer) if outer.len() == 1 => {
            let (variant, inner) = outer.into_iter().next().unwrap_or_default();
            match inner {
                Value::Object(fields) => (variant, fields),
                _ => {
                    return Err(serde::ser::Error::custom(
                        "a tagged variant must hold an object",
                    ));
                }
            }
        }
        _ => return Err(serde::ser::Error::custom("not an externally tagged enum")),
    };
    // The tag first, then the fields (in key order: the derived serializer's map sorts).
    let mut map = s.serialize_map(Some(fields.len() + 1))?;
    map.serialize_entry(tag, &variant)?;
    for (k, v) in &fields {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Implements `Serialize` and `Deserialize` for an enum derived with
/// `#[serde(remote = "Self")]` (externally tagged), in the canonical form tagged by
/// `kind`.
macro_rules! kind_tagged {
    ($ty:ty) => {
        const _: () = {
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    $crate::tagged::serialize(
                        s,
                        "kind",
                        <$ty>::serialize(self, serde_json::value::Serializer),
                    )
                }
            }
            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    $crate::tagged::deserialize(d, "kind", |v| {
                        serde_path_to_error::deserialize(v).map(|Wrap(x)| x)
                    })
                }
            }
            /// Runs the derived (externally tagged) deserializer under path tracking.
            struct Wrap($ty);
            impl<'de> serde::Deserialize<'de> for Wrap {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    <$ty>::deserialize(d).map(Wrap)
                }
            }
        };
    };
}
pub(crate) use kind_tagged;
