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

use std::collections::{BTreeMap, btree_map};

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
/// or keyed by the entry's name (format 2; in name order, so that a parsed snapshot is
/// the same whatever the order of its keys, and writes back the same text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Named<T> {
    List(Vec<T>),
    Keyed(BTreeMap<String, T>),
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
        if let Some(key) = entries.keys().find(|k| !names.contains(&k.as_str())) {
            return Err(corrupt(
                key_path(path, key),
                format!("the config has no {what} {:?}", clip(key)),
            ));
        }
        let mut items = Vec::with_capacity(names.len());
        for name in names {
            let Some(item) = entries.remove(*name) else {
                return Err(corrupt(path, format!("no state for {what} {name:?}")));
            };
            items.push(item);
        }
        Ok(items)
    }

    /// Whether it is keyed by name; `None` when empty, which reads the same in every
    /// format (`[]` and `{}` alike, as some JSON writers cannot tell them apart).
    fn is_keyed(&self) -> Option<bool> {
        match self {
            Self::List(items) if items.is_empty() => None,
            Self::Keyed(entries) if entries.is_empty() => None,
            Self::List(_) => Some(false),
            Self::Keyed(_) => Some(true),
        }
    }
}

/// At most the first 64 characters of a key from the document, for a message.
fn clip(key: &str) -> String {
    key.chars().take(64).collect()
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
                let mut entries = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    match entries.entry(key) {
                        btree_map::Entry::Vacant(slot) => {
                            slot.insert(map.next_value()?);
                        }
                        btree_map::Entry::Occupied(slot) => {
                            return Err(crate::json::duplicate(slot.key()));
                        }
                    }
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
            |_, g| Ok(Named::keyed(g, gates.clone())),
            |_, _, w| {
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
        // A `Snapshot` built or edited in Rust has not been through the parsers' check.
        if !readable(self.format_version) {
            return Err(unsupported(u64::from(self.format_version)));
        }
        self.check_form()?;
        let gates: Vec<&str> = self.config.gates.iter().map(|g| g.name.as_str()).collect();
        let metrics: Vec<&str> = self
            .config
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let state = self.state.map(
            |s, g| match s {
                None => g.into_list(&gates, "state.gates", "gate"),
                Some(s) => g.into_list(&gates, &format!("state.scopes[{s}].gates"), "gate"),
            },
            |i, s, w| match s {
                None => w.into_list(&metrics, &format!("state.arms[{i}].windows"), "metric"),
                Some(s) => w.into_list(&metrics, &format!("state.arms[{i}].scoped[{s}]"), "metric"),
            },
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
        if crate::error::UNTRACKED_FIRST
            && let Ok(s) = serde_json::from_str::<Self>(text)
            && readable(s.format_version)
            && s.check_form().is_ok()
        {
            return Ok(s);
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
            return Err(unsupported(v));
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
        if self.state.gates.is_keyed().is_some_and(|k| k != keyed) {
            return Err(corrupt("state.gates", form("gate states")));
        }
        for (i, arm) in self.state.arms.iter().enumerate() {
            if arm.windows.is_keyed().is_some_and(|k| k != keyed) {
                return Err(corrupt(format!("state.arms[{i}].windows"), form("windows")));
            }
            for (j, w) in arm.scoped.iter().enumerate() {
                if w.as_ref()
                    .and_then(Named::is_keyed)
                    .is_some_and(|k| k != keyed)
                {
                    return Err(corrupt(
                        format!("state.arms[{i}].scoped[{j}]"),
                        form("windows"),
                    ));
                }
            }
        }
        for (j, scope) in self.state.scopes.iter().enumerate() {
            if scope.gates.is_keyed().is_some_and(|k| k != keyed) {
                return Err(corrupt(
                    format!("state.scopes[{j}].gates"),
                    form("gate states"),
                ));
            }
        }
        Ok(())
    }
}

/// An error path of [`Policy::validate`](crate::Policy::validate) (which names gates and
/// metrics, as format 2 writes them) as it points into a snapshot of `format`: in
/// format 1, gate states and windows are array items (`state.gates[0]`).
pub(crate) fn path_in_format(path: String, format: u32, config: &PolicyConfig) -> String {
    if format >= 2 {
        return path;
    }
    // `prefix` names an item; the path continues after it, or ends there.
    let swap = |path: &str, prefix: &str, item: &str| {
        let rest = path.strip_prefix(prefix)?;
        rest.is_empty()
            .then_some(())
            .or_else(|| rest.starts_with(['.', '[']).then_some(()))
            .map(|()| format!("{item}{rest}"))
    };
    for (i, g) in config.gates.iter().enumerate() {
        let named = key_path("state.gates", &g.name);
        if let Some(p) = swap(&path, &named, &format!("state.gates[{i}]")) {
            return p;
        }
    }
    let arm = path
        .strip_prefix("state.arms[")
        .and_then(|rest| rest.split_once(']'))
        .map(|(arm, _)| arm.to_string());
    if let Some(arm) = arm {
        let windows = format!("state.arms[{arm}].windows");
        for (m, metric) in config.metrics.iter().enumerate() {
            let named = key_path(&windows, &metric.name);
            if let Some(p) = swap(&path, &named, &format!("{windows}[{m}]")) {
                return p;
            }
        }
    }
    path
}

/// Refuses a snapshot format this build does not read.
fn unsupported(v: u64) -> Error {
    Error::new(
        ErrorCode::UnsupportedFormatVersion,
        "format_version",
        format!(
            "snapshot format_version {v} is not one this build reads \
             (1 to {SNAPSHOT_FORMAT_VERSION})"
        ),
    )
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
