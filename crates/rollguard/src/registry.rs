//! The version registry: immutable bundles, lifecycle stages and the aliases
//! `stable`, `candidate`, `previous` and `golden`.
//!
//! Rules it keeps:
//! - a bundle never changes once registered (same id, same digest and components);
//! - a rollback target is always validated and never failed;
//! - `golden` is the most recently human-validated version (by config or operator);
//! - when full, it evicts the oldest version that holds no alias, is not one the policy
//!   may still switch to (a pending or retried action's, the rollout's) and is not one
//!   of the three most recently validated; if there is none, registration fails.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::VersionSpec;
use crate::error::{Error, ErrorCode};
use crate::time::Timestamp;

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Known, never rolled out.
    Registered,
    /// Being rolled out (shadow, preview or canary).
    RollingOut,
    /// Promoted, in its post-promotion bake.
    Baking,
    /// Serving all traffic.
    Stable,
    /// Served before and was replaced by a newer stable version.
    Retired,
    /// Rolled back because it failed (or an operator reverted it).
    Failed,
    /// Its rollout was aborted by an operator.
    Aborted,
}

/// Who validated a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// Declared validated in the config.
    Config,
    /// Marked validated by an operator command.
    Operator,
    /// Completed a rollout, including its post-promotion bake.
    Rollout,
}

impl Validator {
    /// Config and operator validations are human ones; they make a version golden.
    pub fn is_human(self) -> bool {
        matches!(self, Self::Config | Self::Operator)
    }
}

/// A validation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// When.
    pub at: Timestamp,
    /// By whom.
    pub by: Validator,
}

/// A registered version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// The bundle id.
    pub id: String,
    /// The bundle digest.
    pub digest: String,
    /// The bundle components.
    #[serde(deserialize_with = "crate::json::unique_map")]
    pub components: BTreeMap<String, String>,
    /// Lifecycle stage.
    pub stage: Stage,
    /// The latest validation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<Validation>,
    /// Registration order, for eviction.
    pub seq: u64,
    /// When it last became stable, as a sequence number (higher is more recent); `None`
    /// if it never served all traffic. `previous` is the most recent former stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_stable: Option<u64>,
}

impl Version {
    /// Usable as a rollback target.
    pub fn is_target(&self) -> bool {
        self.validated.is_some() && self.stage != Stage::Failed
    }
}

/// The aliases, as reported in events and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aliases {
    /// Serving all (or the rest of the) traffic.
    pub stable: String,
    /// Under rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// The last version that held `stable` before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The most recently human-validated version.
    pub golden: String,
}

/// The registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registry {
    pub(crate) versions: Vec<Version>,
    pub(crate) aliases: Aliases,
    pub(crate) next_seq: u64,
}

impl Registry {
    pub(crate) fn new(specs: &[VersionSpec], stable: &str, now: Timestamp) -> Self {
        let versions: Vec<Version> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| Version {
                id: s.id.clone(),
                digest: s.digest.clone(),
                components: s.components.clone(),
                stage: if s.id == stable {
                    Stage::Stable
                } else {
                    Stage::Registered
                },
                validated: s.validated.then_some(Validation {
                    at: now,
                    by: Validator::Config,
                }),
                seq: i as u64,
                held_stable: None,
            })
            .collect();
        let mut registry = Self {
            next_seq: versions.len() as u64,
            versions,
            aliases: Aliases {
                stable: stable.to_string(),
                candidate: None,
                previous: None,
                golden: stable.to_string(),
            },
        };
        registry.set_stable(stable, Stage::Stable);
        registry
    }

    /// Makes `id` the stable version, in `stage` (`Baking` right after a promotion).
    pub(crate) fn set_stable(&mut self, id: &str, stage: Stage) {
        let seq = self.next_seq;
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == id) {
            v.stage = stage;
            v.held_stable = Some(seq);
            self.next_seq = seq.saturating_add(1);
        }
        self.aliases.stable = id.to_string();
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn require(&self, id: &str, path: &str) -> Result<&Version, Error> {
        self.get(id).ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownVersion,
                path,
                format!("no version {id:?}"),
            )
        })
    }

    pub(crate) fn set_stage(&mut self, id: &str, stage: Stage) {
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == id) {
            v.stage = stage;
        }
        if stage == Stage::Failed && self.aliases.golden == id {
            // Golden must stay usable: fall back to the latest human validation left.
            if let Some(g) = self
                .versions
                .iter()
                .filter(|v| v.is_target() && v.validated.is_some_and(|x| x.by.is_human()))
                .max_by_key(|v| (v.validated.map(|x| x.at), v.seq))
            {
                self.aliases.golden = g.id.clone();
            }
        }
    }

    pub(crate) fn validate(&mut self, id: &str, at: Timestamp, by: Validator) {
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == id) {
            v.validated = Some(Validation { at, by });
            if v.stage == Stage::Failed {
                // A human overruled the failure.
                v.stage = Stage::Retired;
            }
            if by.is_human() {
                self.aliases.golden = id.to_string();
            }
        }
    }

    /// Adds a bundle, evicting one version if the registry is full; the versions in
    /// `pinned` (besides the aliases) are never evicted. Registering an identical bundle
    /// again is a no-op (`Ok(None)`); otherwise the result says which version, if any,
    /// was evicted (`Ok(Some(evicted))`).
    pub(crate) fn register(
        &mut self,
        spec: &VersionSpec,
        max: u32,
        pinned: &[&str],
    ) -> Result<Option<Option<String>>, Error> {
        if let Some(v) = self.get(&spec.id) {
            if v.digest == spec.digest && v.components == spec.components {
                return Ok(None);
            }
            return Err(Error::new(
                ErrorCode::DuplicateVersion,
                "version.id",
                format!(
                    "version {:?} is registered with other contents; bundles are immutable",
                    spec.id
                ),
            ));
        }
        let mut evicted = None;
        if self.versions.len() as u64 >= u64::from(max) {
            let evict = self.eviction_candidate(pinned).ok_or_else(|| {
                Error::new(
                    ErrorCode::RegistryFull,
                    "version",
                    "no version can be evicted",
                )
            })?;
            evicted = Some(self.versions.remove(evict).id);
        }
        self.versions.push(Version {
            id: spec.id.clone(),
            digest: spec.digest.clone(),
            components: spec.components.clone(),
            stage: Stage::Registered,
            validated: None,
            seq: self.next_seq,
            held_stable: None,
        });
        self.next_seq = self.next_seq.saturating_add(1);
        Ok(Some(evicted))
    }

    /// Index of the version to evict when full, if any may go.
    fn eviction_candidate(&self, pinned: &[&str]) -> Option<usize> {
        let mut validated: Vec<&Version> = self
            .versions
            .iter()
            .filter(|v| v.validated.is_some())
            .collect();
        validated.sort_by_key(|v| {
            (
                core::cmp::Reverse(v.validated.map(|x| x.at)),
                core::cmp::Reverse(v.seq),
            )
        });
        let keep: Vec<&str> = validated.iter().take(3).map(|v| v.id.as_str()).collect();
        let a = &self.aliases;
        let held = |id: &str| {
            pinned.contains(&id)
                || id == a.stable
                || id == a.golden
                || a.candidate.as_deref() == Some(id)
                || a.previous.as_deref() == Some(id)
                || keep.contains(&id)
        };
        let rank = |v: &Version| match v.stage {
            Stage::Failed | Stage::Aborted => 0,
            Stage::Retired => 1,
            _ => 2,
        };
        self.versions
            .iter()
            .enumerate()
            .filter(|(_, v)| !held(&v.id))
            .min_by_key(|(_, v)| (rank(v), v.seq))
            .map(|(i, _)| i)
    }

    /// The most recent former stable version other than `except` that is validated and
    /// not failed.
    pub(crate) fn previous_target(&self, except: &str) -> Option<String> {
        self.versions
            .iter()
            .filter(|v| v.id != except && v.is_target())
            .filter_map(|v| v.held_stable.map(|seq| (seq, &v.id)))
            .max()
            .map(|(_, id)| id.clone())
    }

    /// The golden version, if it is a usable target.
    pub(crate) fn golden_target(&self) -> Option<String> {
        let g = &self.aliases.golden;
        self.get(g)
            .is_some_and(Version::is_target)
            .then(|| g.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, validated: bool) -> VersionSpec {
        VersionSpec {
            id: id.into(),
            digest: format!("sha256:{id}"),
            components: BTreeMap::new(),
            validated,
        }
    }

    #[test]
    fn eviction_keeps_aliases_and_the_three_latest_validated() {
        let mut r = Registry::new(&[spec("v0", true)], "v0", 0);
        for (i, id) in ["v1", "v2", "v3", "v4", "v5", "v6", "v7"]
            .iter()
            .enumerate()
        {
            r.register(&spec(id, false), 8, &[]).unwrap();
            r.validate(id, 10 + i as u64, Validator::Rollout);
        }
        r.set_stage("v1", Stage::Failed);
        // Full (8): the failed v1 goes first, although v0 is older.
        r.register(&spec("v8", false), 8, &[]).unwrap();
        assert!(!r.contains("v1") && r.contains("v0"));
        // Then the oldest unpinned: v2 (v0 is stable and golden; v5–v7 the latest validated).
        r.register(&spec("v9", false), 8, &[]).unwrap();
        assert!(!r.contains("v2"));
        for kept in ["v0", "v5", "v6", "v7"] {
            assert!(r.contains(kept), "{kept} evicted");
        }
    }

    #[test]
    fn registry_full_when_everything_is_pinned() {
        let mut r = Registry::new(&[spec("v0", true)], "v0", 0);
        for id in ["v1", "v2", "v3"] {
            r.register(&spec(id, false), 4, &[]).unwrap();
            r.validate(id, 5, Validator::Operator);
        }
        let err = r.register(&spec("v4", false), 4, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::RegistryFull);
        assert_eq!(r.versions.len(), 4);
    }

    #[test]
    fn pinned_versions_are_never_evicted() {
        let mut r = Registry::new(&[spec("v0", true)], "v0", 0);
        for id in ["v1", "v2", "v3"] {
            r.register(&spec(id, false), 4, &[]).unwrap();
        }
        // v1 would go first; pinned, v2 goes instead.
        assert_eq!(
            r.register(&spec("v4", false), 4, &["v1"]),
            Ok(Some(Some("v2".into())))
        );
        let err = r
            .register(&spec("v5", false), 4, &["v1", "v3", "v4"])
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::RegistryFull);
    }

    #[test]
    fn bundles_are_immutable_and_identical_re_registration_is_a_no_op() {
        let mut r = Registry::new(&[spec("v0", true)], "v0", 0);
        assert_eq!(r.register(&spec("v1", false), 8, &[]), Ok(Some(None)));
        assert_eq!(r.register(&spec("v1", false), 8, &[]), Ok(None));
        let mut changed = spec("v1", false);
        changed.components.insert("model".into(), "other".into());
        assert_eq!(
            r.register(&changed, 8, &[]).unwrap_err().code,
            ErrorCode::DuplicateVersion
        );
    }

    #[test]
    fn targets_are_validated_and_never_failed() {
        let specs = [spec("v0", true), spec("v1", false), spec("v2", false)];
        let mut r = Registry::new(&specs, "v0", 0);
        assert_eq!(
            r.previous_target("v0"),
            None,
            "nothing else ever held stable"
        );
        r.set_stable("v1", Stage::Stable);
        r.set_stable("v2", Stage::Stable);
        assert_eq!(
            r.previous_target("v2").as_deref(),
            Some("v0"),
            "v1 is not validated"
        );
        r.validate("v1", 5, Validator::Rollout);
        assert_eq!(
            r.previous_target("v2").as_deref(),
            Some("v1"),
            "the latest former stable"
        );
        r.set_stage("v1", Stage::Failed);
        assert_eq!(r.previous_target("v2").as_deref(), Some("v0"));
        // Golden follows human validation only, and leaves a version that fails.
        r.validate("v2", 9, Validator::Rollout);
        assert_eq!(r.aliases.golden, "v0");
        r.validate("v2", 10, Validator::Operator);
        assert_eq!(r.golden_target().as_deref(), Some("v2"));
        r.set_stage("v2", Stage::Failed);
        assert_eq!(r.golden_target().as_deref(), Some("v0"));
        // A human validating a failed version overrules the failure.
        r.validate("v1", 11, Validator::Operator);
        assert_eq!(r.get("v1").map(|v| v.stage), Some(Stage::Retired));
    }
}
