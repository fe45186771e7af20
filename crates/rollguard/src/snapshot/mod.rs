//! Snapshots: a policy's config and whole state as one JSON document, restorable in any
//! binding. A snapshot has its own format version, apart from the config's.
//!
//! | `format_version` | written by | gate states and windows |
//! |---|---|---|
//! | 1 | builds before the statistical-gates reshape | arrays, in config order |
//! | 2 | this build ([`SNAPSHOT_FORMAT_VERSION`]) | objects keyed by gate and metric name |
//!
//! Every format ever written still restores: `tests/vectors/snapshot` keeps one golden
//! snapshot per format, restored and continued by every binding. Keying by name means a
//! snapshot says which gate each state belongs to, and a state that does not match its
//! config's gates and metrics is refused by name rather than read into the wrong gate.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::PolicyConfig;
use crate::error::{Error, ErrorCode, parse_json};
use crate::gate::GateState;
use crate::json::key_path;
use crate::policy::{State, StateOf};
use crate::stats::window::Window;

/// The snapshot format this build writes. It reads every format from 1 up to this.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;

/// Items kept one per config entry (gate or metric): a list in config order (format 1)
/// or keyed by the entry's name, in the document's order (format 2).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Named<T> {
    List(Vec<T>),
    Keyed(Vec<(String, T)>),
}

impl<T> Named<T> {
    /// Keyed by `names`, as this build writes.
    fn keyed(items: Vec<T>, names: impl Iterator<Item = String>) -> Self {
        Self::Keyed(names.zip(items).collect())
    }

    /// The items in config order. A list is taken as it is (restore checks its
    /// length); keys must be exactly `names`. `what` names an entry in messages.
    fn into_list(self, names: &[&str], path: &str, what: &str) -> Result<Vec<T>, Error> {
        let mut entries = match self {
            Self::List(items) => return Ok(items),
            Self::Keyed(entries) => entries,
        };
        if let Some((key, _)) = entries.iter().find(|(k, _)| !names.contains(&k.as_str())) {
            return Err(corrupt(
                key_path(path, key),
                format!("the config has no {what} {key:?}"),
            ));
        }
        let mut items = Vec::with_capacity(names.len());
        for name in names {
            let Some(i) = entries.iter().position(|(k, _)| k == name) else {
                return Err(corrupt(path, format!("no state for {what} {name:?}")));
            };
            items.push(entries.swap_remove(i).1);
        }
        Ok(items)
    }

    fn is_keyed(&self) -> bool {
        matches!(self, Self::Keyed(_))
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Keyed(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamedVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for NamedVisitor<T> {
            type Value = Named<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object keyed by name, or (format 1) an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Named::List(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(crate::json::duplicate(&key));
                    }
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Named::Keyed(entries))
            }
        }

        d.deserialize_any(NamedVisitor(std::marker::PhantomData))
    }
}

/// A state as a snapshot document holds it.
type StateDoc = StateOf<Named<GateState>, Named<Window>>;

/// The whole state of a policy, with its config: restore it anywhere, in any binding
/// ([`Policy::restore`](crate::Policy::restore)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The snapshot format (see the module docs): [`SNAPSHOT_FORMAT_VERSION`] for a
    /// snapshot taken by this build, or the format a parsed one was written in.
    pub format_version: u32,
    /// The policy's config.
    pub config: PolicyConfig,
    state: StateDoc,
}

impl Snapshot {
    /// A snapshot of `state`, in the current format.
    pub(crate) fn of(config: &PolicyConfig, state: State) -> Self {
        let gates = config.gates.iter().map(|g| g.name.clone());
        let keyed = state.map::<_, _, std::convert::Infallible>(
            |g| Ok(Named::keyed(g, gates)),
            |_, w| {
                Ok(Named::keyed(
                    w,
                    config.metrics.iter().map(|m| m.name.clone()),
                ))
            },
        );
        let state = match keyed {
            Ok(state) => state,
            Err(never) => match never {},
        };
        Self {
            format_version: SNAPSHOT_FORMAT_VERSION,
            config: config.clone(),
            state,
        }
    }

    /// The config and the state in config order.
    ///
    /// # Errors
    /// `snapshot_corrupt` at a gate or metric name the config does not have, or where
    /// one it has is missing.
    pub(crate) fn into_parts(self) -> Result<(PolicyConfig, State), Error> {
        self.check_form()?;
        let gates: Vec<&str> = self.config.gates.iter().map(|g| g.name.as_str()).collect();
        let metrics: Vec<&str> = self
            .config
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let state = self.state.map(
            |g| g.into_list(&gates, "state.gates", "gate"),
            |i, w| w.into_list(&metrics, &format!("state.arms[{i}].windows"), "metric"),
        )?;
        Ok((self.config, state))
    }

    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a snapshot of any format this build reads.
    ///
    /// # Errors
    /// `unsupported_format_version` for another format, `duplicate_key` for a key
    /// repeated in an object, `snapshot_corrupt` with the failing field's path for
    /// anything else that does not parse.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        // A snapshot of a known format parses straight into its type; any other
        // document goes through a value, for the format check and the failing field's
        // path.
        if crate::error::UNTRACKED_FIRST {
            if let Ok(s) = serde_json::from_str::<Self>(text) {
                if readable(s.format_version) && s.check_form().is_ok() {
                    return Ok(s);
                }
            }
        }
        // Through a `UniqueValue`, not a `Value`, which would keep the last of a
        // repeated key.
        let value: crate::json::UniqueValue = parse_json(text).map_err(corrupt_parse)?;
        Self::from_value(value.0)
    }

    /// Converts a snapshot from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// As [`Snapshot::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, Error> {
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if let Some(v) = version.filter(|v| !u32::try_from(*v).is_ok_and(readable)) {
            return Err(Error::new(
                ErrorCode::UnsupportedFormatVersion,
                "format_version",
                format!(
                    "snapshot format_version {v} is not one this build reads \
                     (1 to {SNAPSHOT_FORMAT_VERSION})"
                ),
            ));
        }
        let s: Self = crate::error::parse_value(value).map_err(corrupt_parse)?;
        s.check_form()?;
        Ok(s)
    }

    /// Format 1 lists gate states and windows in config order; later formats key them
    /// by name.
    fn check_form(&self) -> Result<(), Error> {
        let keyed = self.format_version >= 2;
        let form = |what: &str| {
            if keyed {
                format!("format {} keys {what} by name", self.format_version)
            } else {
                format!("format 1 lists {what} in config order")
            }
        };
        if self.state.gates.is_keyed() != keyed {
            return Err(corrupt("state.gates", form("gate states")));
        }
        for (i, arm) in self.state.arms.iter().enumerate() {
            if arm.windows.is_keyed() != keyed {
                return Err(corrupt(format!("state.arms[{i}].windows"), form("windows")));
            }
        }
        Ok(())
    }
}

/// Whether this build reads snapshot format `v`.
fn readable(v: u32) -> bool {
    (1..=SNAPSHOT_FORMAT_VERSION).contains(&v)
}

fn corrupt(path: impl Into<String>, message: String) -> Error {
    Error::new(ErrorCode::SnapshotCorrupt, path, message)
}

/// A snapshot that does not parse is `snapshot_corrupt`; a repeated key keeps its own
/// code, as in every other document.
fn corrupt_parse(e: Error) -> Error {
    match e.code {
        ErrorCode::DuplicateKey => e,
        _ => Error {
            code: ErrorCode::SnapshotCorrupt,
            ..e
        },
    }
}
