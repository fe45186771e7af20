//! Scopes: the slices of traffic (a tenant, a tier, an agent, or a combination) whose
//! verdicts a policy keeps apart from the overall one (config `scopes`).
//!
//! A sample's scope is the tuple of its values of the labels `scopes.by` names. The
//! policy numbers scopes in the order it first sees them (a dictionary encoding: the
//! id is the index into its list of scopes) and holds at most `limits.scopes_max`;
//! once that many are held, samples of any new label tuple go to the last one, the
//! overflow scope, so memory never grows with the number of distinct labels. A sample
//! without one of the `by` labels counts overall only.

use serde::{Deserialize, Serialize};

/// A label a scope can be formed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeLabel {
    /// The sample's `tenant`.
    Tenant,
    /// The sample's `tier`.
    Tier,
    /// The sample's `agent`.
    Agent,
}

/// One scope: the values of the labels that form it, or the overflow scope that
/// holds every label tuple seen after `limits.scopes_max − 1` others.
///
/// In JSON, `{"tenant": "acme"}`, `{"tier": "1", "agent": "planner"}`, or
/// `{"overflow": true}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeKey {
    /// The tenant, when scopes are formed by tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The tier, when scopes are formed by tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The agent, when scopes are formed by agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The overflow scope (no labels).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub overflow: bool,
}

impl ScopeKey {
    /// The overflow scope.
    pub fn overflow() -> Self {
        Self {
            overflow: true,
            ..Self::default()
        }
    }

    /// The scope of a sample with these labels, when scopes are formed by `by`; `None`
    /// when it lacks one of them.
    pub(crate) fn of(
        by: &[ScopeLabel],
        tenant: Option<&str>,
        tier: Option<&str>,
        agent: Option<&str>,
    ) -> Option<Self> {
        let mut key = Self::default();
        for label in by {
            match label {
                ScopeLabel::Tenant => key.tenant = Some(tenant?.to_string()),
                ScopeLabel::Tier => key.tier = Some(tier?.to_string()),
                ScopeLabel::Agent => key.agent = Some(agent?.to_string()),
            }
        }
        Some(key)
    }

    /// Whether this key is a scope of `by`: the overflow scope, or exactly the labels
    /// `by` names.
    pub(crate) fn fits(&self, by: &[ScopeLabel]) -> bool {
        let has = |l| by.contains(&l);
        if self.overflow {
            return self.tenant.is_none() && self.tier.is_none() && self.agent.is_none();
        }
        self.tenant.is_some() == has(ScopeLabel::Tenant)
            && self.tier.is_some() == has(ScopeLabel::Tier)
            && self.agent.is_some() == has(ScopeLabel::Agent)
    }

    /// The key as a narrative names it: `tenant=acme`, `tier=1 agent=planner`, or
    /// `(overflow)`.
    pub fn label(&self) -> String {
        if self.overflow {
            return "(overflow)".into();
        }
        let parts = [
            ("tenant", &self.tenant),
            ("tier", &self.tier),
            ("agent", &self.agent),
        ];
        parts
            .iter()
            .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_without_a_by_label_has_no_scope() {
        let by = [ScopeLabel::Tier, ScopeLabel::Agent];
        assert_eq!(ScopeKey::of(&by, Some("acme"), Some("1"), None), None);
        let key = ScopeKey::of(&by, Some("acme"), Some("1"), Some("planner")).unwrap();
        assert_eq!(key.tenant, None);
        assert_eq!(key.label(), "tier=1 agent=planner");
        assert!(key.fits(&by));
        assert!(!key.fits(&[ScopeLabel::Tier]));
        assert!(ScopeKey::overflow().fits(&by));
        assert_eq!(
            serde_json::to_string(&key).unwrap(),
            r#"{"tier":"1","agent":"planner"}"#
        );
        assert_eq!(
            serde_json::to_string(&ScopeKey::overflow()).unwrap(),
            r#"{"overflow":true}"#
        );
    }
}
