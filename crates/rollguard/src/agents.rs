//! Per-agent versions: one [`Policy`] per agent, each with its own registry (stable,
//! candidate, previous and golden), rollout, gates, cooldown and breaker.
//!
//! Scopes (`scopes.by: ["agent"]`) judge one rollout of one shared version per agent;
//! [`Agents`] goes further: every agent has its own versions, so one agent can fall
//! back to *its* golden version while the others keep the update.
//!
//! The config gives one default [`PolicyConfig`] and, per agent, an override applied
//! to it as an RFC 7396 JSON merge patch (objects merge key by key, `null` removes a
//! key, anything else replaces), then parsed and validated as a policy config of its
//! own named `<name>/<agent>`:
//!
//! ```json
//! {"format_version": 1, "name": "ops",
//!  "policy": {"format_version": 1, "versions": [...], "stable": "v1", ...},
//!  "agents": {"negotiator": {"gates": [...], "safety": {"rollback_to": "golden"}},
//!             "notifier": {}}}
//! ```
//!
//! Inputs are [`AgentInput`]s: an [`Input`] with an optional `agent` key in the same
//! object. A sample goes to the agent of its `agent` label (or the input's `agent`);
//! `ack` and `action_failed` must name their agent; any other command goes to its
//! agent, or without one to every agent, atomically: if any agent refuses it, none
//! takes it. Every input first ticks the agents whose timers are due by its time, so
//! decisions come in time order whichever agent an input is for; a `tick` (with or
//! without an agent) does only that. The container has one clock: an input before the
//! latest input's time, for any agent, is `time_went_backwards`.
//!
//! Like a policy, the container is sans-IO and deterministic: agents are kept and
//! reported in name order, and a refused input leaves every agent as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::config::{PolicyConfig, check_label, limits};
use crate::error::{Error, ErrorCode, ensure, parse_json, parse_value};
use crate::input::{Count, Input, Sample};
use crate::json::{UniqueValue, key_path};
use crate::output::Step;
use crate::policy::{Assignment, Labels, Policy, RoutingTable, Status};
use crate::snapshot::Snapshot;
use crate::time::{Millis, Timestamp};

/// The format of an [`AgentsSnapshot`] this build writes and reads.
pub const AGENTS_SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Per-agent policies: a default policy config and each agent's override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// Must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// A free-form name; agent `a`'s policy is named `<name>/a` (its assignment salts
    /// derive from it, so agents split traffic independently).
    #[serde(default)]
    pub name: String,
    /// Most agents (default 64, at most [`limits::AGENTS_MAX`]).
    #[serde(default = "default_agents_max")]
    pub agents_max: u32,
    /// Every agent's policy before its override. Its `name` must be empty: the agents'
    /// policies are named after the container and the agent.
    pub policy: PolicyConfig,
    /// The agents, by name (at least one), each with a JSON merge patch (RFC 7396) of
    /// `policy`: `{}` takes the default as it is.
    #[serde(deserialize_with = "unique_patches")]
    pub agents: BTreeMap<String, Map<String, Value>>,
}

fn default_agents_max() -> u32 {
    64
}

/// Reads the agents' overrides: an object of objects, with no key twice at any depth.
fn unique_patches<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Map<String, Value>>, D::Error> {
    let patches: BTreeMap<String, UniqueValue> = crate::json::unique_map(d)?;
    patches
        .into_iter()
        .map(|(agent, UniqueValue(v))| match v {
            Value::Object(m) => Ok((agent, m)),
            _ => Err(crate::json::marked(
                &key_path("", &agent),
                "an agent's override is a JSON object (a merge patch of `policy`)",
            )),
        })
        .collect()
}

/// Applies an RFC 7396 JSON merge patch to `target`.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

impl AgentsConfig {
    /// Parses a config from JSON text (without validating it).
    ///
    /// # Errors
    /// `invalid_json` or `duplicate_key`, with the field's path.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse_json(text)
    }

    /// Converts a JSON value (a binding's native object), without validating it.
    ///
    /// # Errors
    /// `invalid_json` with the field's path.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        parse_value(value)
    }

    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the whole config, every agent's policy included.
    ///
    /// # Errors
    /// As [`AgentsConfig::policies`].
    pub fn validate(&self) -> Result<(), Error> {
        self.policies().map(|_| ())
    }

    /// Every agent's policy config: the default with the agent's override merged in,
    /// named `<name>/<agent>`, validated.
    ///
    /// # Errors
    /// `unsupported_format_version`; `invalid_value` for no agent, `agents_max` 0, a
    /// `name` in `policy` or an override, or an empty agent name; `limit_exceeded` for
    /// more agents than `agents_max`, or `agents_max` above [`limits::AGENTS_MAX`];
    /// `label_too_long`; any config error of `policy` (at `policy....`) or of an
    /// agent's merged config (at `agents.<agent>....`, the path inside that config);
    /// `state_too_large` or `too_much_work` (at `agents`) when the agents' worst cases
    /// together exceed [`limits::STATE_BYTES_CEILING`] or
    /// [`limits::CELLS_READ_CEILING`].
    pub fn policies(&self) -> Result<BTreeMap<String, PolicyConfig>, Error> {
        crate::error::check_format_version(self.format_version)?;
        self.policy.validate().map_err(|e| e.within("policy"))?;
        ensure(
            self.policy.name.is_empty(),
            ErrorCode::InvalidValue,
            "policy.name",
            || "the agents' policies are named <name>/<agent>; leave policy.name out".into(),
        )?;
        let label_max = self.policy.limits.label_len_max;
        check_label(&self.name, label_max, "name", true)?;
        ensure(
            self.agents_max >= 1,
            ErrorCode::InvalidValue,
            "agents_max",
            || "agents_max must be at least 1".into(),
        )?;
        ensure(
            self.agents_max <= limits::AGENTS_MAX,
            ErrorCode::LimitExceeded,
            "agents_max",
            || format!("agents_max is at most {}", limits::AGENTS_MAX),
        )?;
        ensure(
            !self.agents.is_empty(),
            ErrorCode::InvalidValue,
            "agents",
            || "declare at least one agent".into(),
        )?;
        ensure(
            self.agents.len() as u64 <= u64::from(self.agents_max),
            ErrorCode::LimitExceeded,
            "agents",
            || {
                format!(
                    "{} agents, agents_max is {}",
                    self.agents.len(),
                    self.agents_max
                )
            },
        )?;
        // Serializing plain data cannot fail.
        let default = serde_json::to_value(&self.policy).unwrap_or(Value::Null);
        let (mut bytes, mut cells) = (0u64, 0u64);
        let mut out = BTreeMap::new();
        for (agent, patch) in &self.agents {
            let path = key_path("agents", agent);
            check_label(agent, label_max, &path, false)?;
            ensure(
                !patch.contains_key("name"),
                ErrorCode::InvalidValue,
                key_path(&path, "name"),
                || "an agent's policy is named <name>/<agent>".into(),
            )?;
            let mut value = default.clone();
            merge_patch(&mut value, &Value::Object(patch.clone()));
            let mut config = PolicyConfig::from_value(value).map_err(|e| e.within(&path))?;
            config.name = format!("{}/{agent}", self.name);
            config.validate().map_err(|e| e.within(&path))?;
            let f = config.footprint();
            bytes = bytes.saturating_add(f.state_bytes_max);
            cells = cells.saturating_add(f.cells_read_per_input_max);
            out.insert(agent.clone(), config);
        }
        ensure(
            bytes <= limits::STATE_BYTES_CEILING,
            ErrorCode::StateTooLarge,
            "agents",
            || {
                format!(
                    "the agents may need {bytes} bytes of state together, at most {}",
                    limits::STATE_BYTES_CEILING
                )
            },
        )?;
        // A tick without an agent reaches every agent.
        ensure(
            cells <= limits::CELLS_READ_CEILING,
            ErrorCode::TooMuchWork,
            "agents",
            || {
                format!(
                    "a tick of every agent may read {cells} window cells, at most {}",
                    limits::CELLS_READ_CEILING
                )
            },
        )?;
        Ok(out)
    }
}

/// An [`Input`] for [`Agents`], with the agent it is for. In JSON the `agent` key sits
/// in the input's own object (`{"kind": "ack", "at": 5, "action_id": 1, "agent": "a"}`);
/// for `observe`, that key is the sample's `agent` label.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInput {
    /// The agent; `None` routes samples by their label and broadcasts commands.
    pub agent: Option<String>,
    /// The input.
    pub input: Input,
}

impl AgentInput {
    /// An input for one agent.
    pub fn to(agent: &str, input: Input) -> Self {
        Self {
            agent: Some(agent.to_string()),
            input,
        }
    }

    /// An input for every agent (a command), or routed by its samples' labels.
    pub fn all(input: Input) -> Self {
        Self { agent: None, input }
    }

    /// Parses one input from canonical JSON.
    ///
    /// # Errors
    /// `invalid_json` or `duplicate_key`, with the field's path.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse_json(text)
    }

    /// Converts one input from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// `invalid_json` with the field's path.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        parse_value(value)
    }

    fn split(value: Value) -> Result<Self, Error> {
        let Value::Object(mut map) = value else {
            return Input::from_value(value).map(Self::all);
        };
        let agent = if map.get("kind").and_then(Value::as_str) == Some("observe") {
            // The sample's own label.
            None
        } else {
            match map.remove("agent") {
                None => None,
                Some(Value::String(a)) => Some(a),
                Some(_) => {
                    return Err(Error::new(
                        ErrorCode::InvalidJson,
                        "agent",
                        "agent must be a string",
                    ));
                }
            }
        };
        Ok(Self {
            agent,
            input: Input::from_value(Value::Object(map))?,
        })
    }
}

impl Serialize for AgentInput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.input).map_err(serde::ser::Error::custom)?;
        if let (Some(agent), Value::Object(m)) = (&self.agent, &mut value) {
            m.insert("agent".into(), Value::String(agent.clone()));
        }
        value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AgentInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let UniqueValue(value) = UniqueValue::deserialize(d)?;
        Self::split(value).map_err(|e| {
            if e.path.is_empty() {
                D::Error::custom(e.message)
            } else {
                crate::json::marked(&e.path, &e.message)
            }
        })
    }
}

/// One agent's part of an [`AgentsStep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStep {
    /// The agent.
    pub agent: String,
    /// Its decisions and events.
    pub step: Step,
}

/// What one input to [`Agents`] produced: the steps of the agents that have something
/// to say, in name order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsStep {
    /// The input's time.
    pub at: Timestamp,
    /// The agents with decisions or events.
    pub agents: Vec<AgentStep>,
}

impl AgentsStep {
    /// The step of `agent`, if it has one.
    pub fn get(&self, agent: &str) -> Option<&Step> {
        self.agents
            .iter()
            .find(|a| a.agent == agent)
            .map(|a| &a.step)
    }

    /// True when no agent has anything to say.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

/// The state of every agent, with the config: [`Agents::restore`] takes it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSnapshot {
    /// [`AGENTS_SNAPSHOT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The container's config.
    pub config: AgentsConfig,
    /// The container's clock: the latest input's time, at or after every agent's.
    pub now: Timestamp,
    /// Each agent's policy snapshot, by agent.
    #[serde(deserialize_with = "crate::json::unique_map")]
    pub agents: BTreeMap<String, Snapshot>,
}

impl AgentsSnapshot {
    /// The canonical JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a snapshot from JSON text.
    ///
    /// # Errors
    /// `invalid_json` or `duplicate_key`, with the field's path.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        parse_json(text)
    }

    /// Converts a snapshot from a JSON value (a binding's native object).
    ///
    /// # Errors
    /// `invalid_json` with the field's path.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        parse_value(value)
    }
}

/// Per-agent policies (see the module docs): each agent has its own versions,
/// rollout, gates, cooldown and breaker.
///
/// Every method that takes an input either applies it completely, to every agent it
/// reaches, or returns an [`Error`] and leaves every agent exactly as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Agents {
    config: AgentsConfig,
    policies: BTreeMap<String, Policy>,
    /// Derived from `policies`, so that an input costs O(log agents) and not a question
    /// to every agent: each agent's next deadline, in time order ...
    due: BTreeSet<(Timestamp, String)>,
    /// The container's clock: the latest input's time (an agent's own clock lags
    /// behind it while no input reaches the agent).
    now: Timestamp,
}

/// Where an input goes.
enum Route {
    One(String),
    All,
}

impl Agents {
    /// Creates every agent's policy at time `now`.
    ///
    /// # Errors
    /// A config error (see [`AgentsConfig::policies`]) or `time_out_of_range`.
    pub fn new(config: AgentsConfig, now: Timestamp) -> Result<Self, Error> {
        let mut policies = BTreeMap::new();
        for (agent, c) in config.policies()? {
            let policy = Policy::new(c, now).map_err(|e| e.within(key_path("agents", &agent)))?;
            policies.insert(agent, policy);
        }
        Ok(Self::indexed(config, policies, now))
    }

    fn indexed(config: AgentsConfig, policies: BTreeMap<String, Policy>, now: Timestamp) -> Self {
        let due = policies
            .iter()
            .filter_map(|(a, p)| Some((p.next_deadline()?, a.clone())))
            .collect();
        Self {
            config,
            policies,
            due,
            now,
        }
    }

    /// Parses and validates a config, then creates the agents.
    ///
    /// # Errors
    /// `invalid_json` or a config error, with the field's path.
    pub fn from_json(config: &str, now: Timestamp) -> Result<Self, Error> {
        Self::new(AgentsConfig::from_json(config)?, now)
    }

    /// The config.
    pub fn config(&self) -> &AgentsConfig {
        &self.config
    }

    /// The agents' names, in order.
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    /// One agent's policy.
    pub fn policy(&self, agent: &str) -> Option<&Policy> {
        self.policies.get(agent)
    }

    /// The latest input's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// When some agent next needs a [`tick`](Agents::tick), if ever.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.due.first().map(|(d, _)| *d)
    }

    /// Every agent's status, by agent.
    pub fn status(&self) -> BTreeMap<String, Status> {
        self.policies
            .iter()
            .map(|(a, p)| (a.clone(), p.status()))
            .collect()
    }

    /// Where a routing key of `agent` goes now ([`Policy::assign`]).
    ///
    /// # Errors
    /// `unknown_agent`.
    pub fn assign(&self, agent: &str, key: impl AsRef<[u8]>) -> Result<Assignment, Error> {
        Ok(self.require(agent)?.assign(key))
    }

    /// [`Policy::assign_maybe_pinned`] of `agent`'s policy.
    ///
    /// # Errors
    /// `unknown_agent`, or as [`Policy::assign_session`].
    pub fn assign_maybe_pinned(
        &self,
        agent: &str,
        key: impl AsRef<[u8]>,
        session_started_at: Option<Timestamp>,
        now: Option<Timestamp>,
    ) -> Result<Assignment, Error> {
        self.require(agent)?
            .assign_maybe_pinned(key, session_started_at, now)
    }

    /// `agent`'s routing table ([`Policy::routing_table`]).
    ///
    /// # Errors
    /// `unknown_agent`.
    pub fn routing_table(&self, agent: &str) -> Result<RoutingTable, Error> {
        Ok(self.require(agent)?.routing_table())
    }

    /// A snapshot of every agent, with the config.
    pub fn snapshot(&self) -> AgentsSnapshot {
        AgentsSnapshot {
            format_version: AGENTS_SNAPSHOT_FORMAT_VERSION,
            config: self.config.clone(),
            now: self.now,
            agents: self
                .policies
                .iter()
                .map(|(a, p)| (a.clone(), p.snapshot()))
                .collect(),
        }
    }

    /// Recreates the agents from a snapshot; they continue exactly as the originals
    /// would.
    ///
    /// # Errors
    /// `unsupported_format_version`; a config error (at `config....`);
    /// `snapshot_corrupt` at `now` when an agent's time is after it; and
    /// `snapshot_corrupt` at `agents.<agent>` when the snapshot's agents are not the
    /// config's, or at `agents.<agent>.config` when an agent's policy config is not the
    /// one the config gives it; any error restoring an agent's snapshot, at
    /// `agents.<agent>....`.
    pub fn restore(snapshot: AgentsSnapshot) -> Result<Self, Error> {
        ensure(
            snapshot.format_version == AGENTS_SNAPSHOT_FORMAT_VERSION,
            ErrorCode::UnsupportedFormatVersion,
            "format_version",
            || {
                format!(
                    "agents snapshot format {} is not {AGENTS_SNAPSHOT_FORMAT_VERSION}",
                    snapshot.format_version
                )
            },
        )?;
        let configs = snapshot.config.policies().map_err(|e| e.within("config"))?;
        let corrupt = |agent: &str, what: &str| {
            Error::new(
                ErrorCode::SnapshotCorrupt,
                key_path("agents", agent),
                format!("agent {agent:?} {what}"),
            )
        };
        if let Some(a) = configs.keys().find(|a| !snapshot.agents.contains_key(*a)) {
            return Err(corrupt(a, "is in the config and not in the snapshot"));
        }
        if let Some(a) = snapshot.agents.keys().find(|a| !configs.contains_key(*a)) {
            return Err(corrupt(a, "is in the snapshot and not in the config"));
        }
        let mut policies = BTreeMap::new();
        for ((agent, snap), config) in snapshot.agents.into_iter().zip(configs.values()) {
            let path = key_path("agents", &agent);
            ensure(
                snap.config == *config,
                ErrorCode::SnapshotCorrupt,
                key_path(&path, "config"),
                || format!("agent {agent:?}'s policy config is not the one the config gives"),
            )?;
            let policy = Policy::restore(snap).map_err(|e| e.within(&path))?;
            policies.insert(agent, policy);
        }
        crate::time::check_time(snapshot.now, "now")?;
        if let Some((agent, p)) = policies.iter().find(|(_, p)| p.now() > snapshot.now) {
            return Err(Error::new(
                ErrorCode::SnapshotCorrupt,
                "now",
                format!(
                    "the agents' time {} is before agent {agent:?}'s time {}",
                    snapshot.now,
                    p.now()
                ),
            ));
        }
        Ok(Self::indexed(snapshot.config, policies, snapshot.now))
    }

    /// Parses a snapshot's JSON and restores it.
    ///
    /// # Errors
    /// As [`AgentsSnapshot::from_json`] and [`Agents::restore`].
    pub fn restore_json(text: &str) -> Result<Self, Error> {
        Self::restore(AgentsSnapshot::from_json(text)?)
    }

    /// Parses one input from JSON and applies it.
    ///
    /// # Errors
    /// `invalid_json`, or as [`Agents::handle`].
    pub fn handle_json(&mut self, input: &str) -> Result<AgentsStep, Error> {
        self.handle(&AgentInput::from_json(input)?)
    }

    /// Time passes: every agent fires its timers due at or before `now`.
    ///
    /// # Errors
    /// `time_went_backwards` or `time_out_of_range`; no agent changes.
    pub fn tick(&mut self, now: Timestamp) -> Result<AgentsStep, Error> {
        self.handle(&AgentInput::all(Input::Tick { at: now }))
    }

    /// Applies one input (see the module docs for where it goes).
    ///
    /// # Errors
    /// `unknown_agent` for an agent not in the config, a sample or batch sample with no
    /// agent, an `ack` or `action_failed` without one, or a sample whose label and the
    /// input's `agent` differ; `time_went_backwards` for a time before the latest
    /// input's (of any agent); any error of the agent's policy. A broadcast command
    /// refused by one agent is refused, with that agent named in the message. No agent
    /// changes.
    pub fn handle(&mut self, input: &AgentInput) -> Result<AgentsStep, Error> {
        let wrapper = input.agent.as_deref();
        let now = self.now();
        let (at, mut steps) = match &input.input {
            Input::Observe(s) => {
                let agent = self.sample_agent(s, wrapper, "agent")?;
                self.check_time(s.at, now, "at")?;
                self.check_due(s.at)?;
                let step = self.with_agent(&agent, |p| p.observe(s))?;
                (s.at, vec![(agent, step)])
            }
            Input::ObserveBatch { samples } => self.batch(samples, wrapper, now)?,
            Input::Tick { at } => {
                if let Some(a) = wrapper {
                    self.require(a)?;
                }
                self.check_time(*at, now, "at")?;
                self.check_due(*at)?;
                // The agents due by `at` are ticked below; the others have nothing to do.
                (*at, Vec::new())
            }
            command => {
                let route = match (command, wrapper) {
                    (_, Some(a)) => {
                        self.require(a)?;
                        Route::One(a.to_string())
                    }
                    (Input::Ack { .. } | Input::ActionFailed { .. }, None) => {
                        return Err(Error::new(
                            ErrorCode::UnknownAgent,
                            "agent",
                            "an acknowledgement names the agent whose action it is",
                        ));
                    }
                    (_, None) => Route::All,
                };
                let at = command.at().unwrap_or(now);
                self.check_time(at, now, "at")?;
                self.check_due(at)?;
                (at, self.command(command, route)?)
            }
        };
        // Every agent fires its timers due by the input's time (the input's own
        // agents did already); nothing can fail here (`check_due`).
        for agent in self.due_by(at) {
            if let Ok(step) = self.with_agent(&agent, |p| p.tick(at)) {
                steps.push((agent, step));
            }
        }
        self.now = self.now.max(at);
        Ok(Self::collect(at, steps))
    }

    /// Records a column of value samples of one metric on one arm of `agent`'s
    /// policy, atomically, with the result of the rows one by one as
    /// [`Agents::handle`] inputs: the agent takes them as
    /// [`Policy::observe_values_labelled`] does, and every other agent fires its timers
    /// due by a row's time after that row, as after any input. `labels` may hold tenant
    /// and tier columns (scopes within the agent); an `agent` column, if given, must
    /// name `agent` on every row that has one.
    ///
    /// # Errors
    /// `unknown_agent` for an agent not in the config or a row labelled with another
    /// agent (`agent[3]`); `time_went_backwards` for a first row before the latest
    /// input's time (of any agent); any error of the policy's column call, naming its
    /// row. No agent changes.
    pub fn observe_values<S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.value_column(agent, arm, metric, at, values, labels)
    }

    /// [`Agents::observe_values`] with the times as `f64` ms (see
    /// [`Policy::observe_values_f64`]).
    ///
    /// # Errors
    /// As [`Agents::observe_values`].
    pub fn observe_values_f64<S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[f64],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.value_column(agent, arm, metric, at, values, labels)
    }

    /// Records a column of count samples (`events` out of `totals`) for `agent`, as
    /// [`Agents::observe_values`] does.
    ///
    /// # Errors
    /// As [`Agents::observe_values`] (`events[3]`, `total[3]`, …).
    #[allow(clippy::too_many_arguments)] // one argument per column, as the policy's
    pub fn observe_counts<S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[Timestamp],
        events: &[i64],
        totals: &[i64],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.count_column(agent, arm, metric, at, events, totals, labels)
    }

    /// [`Agents::observe_counts`] with times and counts as `f64` (see
    /// [`Policy::observe_counts_f64`]).
    ///
    /// # Errors
    /// As [`Agents::observe_counts`].
    #[allow(clippy::too_many_arguments)] // one argument per column, as the policy's
    pub fn observe_counts_f64<S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[f64],
        events: &[f64],
        totals: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.count_column(agent, arm, metric, at, events, totals, labels)
    }

    /// [`Agents::observe_values`] for either kind of time.
    fn value_column<T: Millis, S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[T],
        values: &[f64],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.column(
            agent,
            at,
            labels,
            |p| p.check_value_column(arm, metric, at, values, labels),
            |p, checked, r| {
                let (t, x) = (&at[r.clone()], &values[r.clone()]);
                p.record_value_column(checked, arm, t, x, &labels.rows(r))
            },
        )
    }

    /// [`Agents::observe_counts`] for either kind of time and count.
    #[allow(clippy::too_many_arguments)] // one argument per column, as the policy's
    fn count_column<T: Millis, N: Count, S: AsRef<str>>(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[T],
        events: &[N],
        totals: &[N],
        labels: &Labels<'_, S>,
    ) -> Result<AgentsStep, Error> {
        self.column(
            agent,
            at,
            labels,
            |p| p.check_count_column(arm, metric, at, events, totals, labels),
            |p, checked, r| {
                let (t, e, n) = (&at[r.clone()], &events[r.clone()], &totals[r.clone()]);
                p.record_count_column(checked, arm, t, e, n, &labels.rows(r))
            },
        )
    }

    /// A column for `agent`: checked whole first (against the container's clock, the
    /// other agents' timers and by `check`, the policy's own checks), so that nothing
    /// changes when it is refused; then recorded in pieces, each ending at the first
    /// row at or after another agent's next timer, which then fires at that row's
    /// time, as it would after that row's input. Agents share nothing, so the agent's
    /// pieces give it what the whole column would.
    fn column<T: Millis, S: AsRef<str>>(
        &mut self,
        agent: &str,
        at: &[T],
        labels: &Labels<'_, S>,
        check: impl FnOnce(&Policy) -> Result<Option<(usize, bool)>, Error>,
        mut record: impl FnMut(&mut Policy, (usize, bool), Range<usize>) -> Step,
    ) -> Result<AgentsStep, Error> {
        let policy = self.require(agent)?;
        if let Some(column) = &labels.agent {
            for (i, &code) in column.codes.iter().enumerate() {
                let label = usize::try_from(code)
                    .ok()
                    .and_then(|c| column.categories.get(c));
                if let Some(label) = label.map(AsRef::as_ref).filter(|l| *l != agent) {
                    return Err(Error::new(
                        ErrorCode::UnknownAgent,
                        format!("agent[{i}]"),
                        format!(
                            "the row's agent {label:?} is not the agent {agent:?} the column goes to"
                        ),
                    ));
                }
            }
        }
        let now = self.now;
        // A malformed first time is the policy's to refuse, naming its row.
        if let Some(first) = at.first().and_then(|t| t.exact("at").ok()) {
            self.check_time(first, now, "at[0]")?;
        }
        let Some(checked) = check(policy)? else {
            return Ok(Self::collect(now, Vec::new()));
        };
        // Checked: every time is exact, in order, and not before `now`.
        let last = at.last().map_or(now, |t| t.ms());
        self.check_due(last)?;
        let mut steps = Vec::new();
        let mut i = 0;
        while i < at.len() {
            let next = self.due.iter().find(|(_, a)| a != agent).map(|(d, _)| *d);
            let end = match next {
                Some(d) => (i + at[i..].partition_point(|t| t.ms() < d) + 1).min(at.len()),
                None => at.len(),
            };
            // A piece of a column the policy accepted: it cannot be refused.
            let step = self.with_agent(agent, |p| Ok(record(p, checked, i..end)))?;
            steps.push((agent.to_string(), step));
            let t = at[end - 1].ms();
            for other in self.due_by(t) {
                if let Ok(step) = self.with_agent(&other, |p| p.tick(t)) {
                    steps.push((other, step));
                }
            }
            i = end;
        }
        self.now = last;
        Ok(Self::collect(last, steps))
    }

    /// The agents with a deadline at or before `at`.
    fn due_by(&self, at: Timestamp) -> Vec<String> {
        self.due
            .range(..(at.saturating_add(1), String::new()))
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Runs `f` on `agent`'s policy, keeping the deadline index up to date.
    fn with_agent<T>(
        &mut self,
        agent: &str,
        f: impl FnOnce(&mut Policy) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let p = self
            .policies
            .get_mut(agent)
            .ok_or_else(|| unknown(agent, "agent"))?;
        let before = p.next_deadline();
        let result = f(p);
        let after = p.next_deadline();
        if before != after {
            if let Some(d) = before {
                self.due.remove(&(d, agent.to_string()));
            }
            if let Some(d) = after {
                self.due.insert((d, agent.to_string()));
            }
        }
        result
    }

    fn require(&self, agent: &str) -> Result<&Policy, Error> {
        self.policies
            .get(agent)
            .ok_or_else(|| unknown(agent, "agent"))
    }

    /// The agent of a sample: its label, or the input's `agent`.
    fn sample_agent(&self, s: &Sample, wrapper: Option<&str>, path: &str) -> Result<String, Error> {
        let agent = match (s.agent.as_deref(), wrapper) {
            (Some(l), Some(w)) if l != w => {
                return Err(Error::new(
                    ErrorCode::UnknownAgent,
                    path,
                    format!("the sample's agent {l:?} is not the input's agent {w:?}"),
                ));
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(Error::new(
                    ErrorCode::UnknownAgent,
                    path,
                    "a sample goes to the agent of its agent label; it has none",
                ));
            }
        };
        self.policies
            .get(agent)
            .ok_or_else(|| unknown(agent, path))?;
        Ok(agent.to_string())
    }

    fn check_time(&self, at: Timestamp, now: Timestamp, path: &str) -> Result<(), Error> {
        crate::time::check_time(at, path)?;
        ensure(at >= now, ErrorCode::TimeWentBackwards, path, || {
            format!("time {at} is before the agents' time {now}")
        })
    }

    /// Checks that every agent due by `at` can be ticked then, so that the ticks after
    /// an accepted input cannot fail.
    fn check_due(&self, at: Timestamp) -> Result<(), Error> {
        for agent in self.due_by(at) {
            self.require(&agent)?
                .check_tick(at)
                .map_err(|e| in_agent(e, &agent))?;
        }
        Ok(())
    }

    /// A batch: its samples split by agent, every agent's share checked before any is
    /// recorded.
    fn batch(
        &mut self,
        samples: &[Sample],
        wrapper: Option<&str>,
        now: Timestamp,
    ) -> Result<(Timestamp, Vec<(String, Step)>), Error> {
        if let Some(a) = wrapper {
            self.require(a)?;
        }
        let mut groups: BTreeMap<String, Vec<(usize, &Sample)>> = BTreeMap::new();
        let mut t = now;
        for (i, s) in samples.iter().enumerate() {
            let path = format!("samples[{i}]");
            let agent = self.sample_agent(s, wrapper, &key_path(&path, "agent"))?;
            self.check_time(s.at, t, &key_path(&path, "at"))?;
            t = s.at;
            groups.entry(agent).or_default().push((i, s));
        }
        self.check_due(t)?;
        let mut checked = Vec::with_capacity(groups.len());
        for (agent, group) in &groups {
            let metrics = self.require(agent)?.check_batch(group)?;
            checked.push(metrics);
        }
        let mut steps = Vec::with_capacity(groups.len());
        for ((agent, group), metrics) in groups.iter().zip(checked) {
            let step = self.with_agent(agent, |p| Ok(p.record_checked(group, &metrics, t)))?;
            steps.push((agent.clone(), step));
        }
        Ok((t, steps))
    }

    /// A command for one agent or, atomically, for all.
    fn command(&mut self, input: &Input, route: Route) -> Result<Vec<(String, Step)>, Error> {
        let targets: Vec<String> = match route {
            Route::One(a) => vec![a],
            Route::All => self.policies.keys().cloned().collect(),
        };
        let broadcast = targets.len() > 1;
        let mut applied = Vec::with_capacity(targets.len());
        for agent in targets {
            match self.with_agent(&agent, |p| p.command_revertible(input)) {
                Ok((step, undo)) => applied.push((agent, step, undo)),
                Err(e) => {
                    // Put back the agents that took it, latest first.
                    for (a, _, undo) in applied.into_iter().rev() {
                        let _ = self.with_agent(&a, |p| {
                            p.revert(undo);
                            Ok(())
                        });
                    }
                    return Err(if broadcast { in_agent(e, &agent) } else { e });
                }
            }
        }
        Ok(applied
            .into_iter()
            .map(|(agent, step, _)| (agent, step))
            .collect())
    }

    /// The agents' steps in name order, one per agent, without the empty ones.
    fn collect(at: Timestamp, steps: Vec<(String, Step)>) -> AgentsStep {
        let mut by_agent: BTreeMap<String, Step> = BTreeMap::new();
        for (agent, step) in steps {
            let entry = by_agent.entry(agent).or_insert_with(|| Step {
                at,
                decisions: Vec::new(),
                events: Vec::new(),
            });
            entry.decisions.extend(step.decisions);
            entry.events.extend(step.events);
        }
        AgentsStep {
            at,
            agents: by_agent
                .into_iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(agent, step)| AgentStep { agent, step })
                .collect(),
        }
    }
}

fn unknown(agent: &str, path: &str) -> Error {
    Error::new(
        ErrorCode::UnknownAgent,
        path,
        format!("no agent {agent:?} in the config"),
    )
}

/// Names the agent that refused an input in the error's message (its path stays the
/// input's field).
fn in_agent(mut e: Error, agent: &str) -> Error {
    e.message = format!("agent {agent:?}: {}", e.message);
    e
}
