//! One replication: a fresh policy, a router that obeys it, and the recording fed
//! through both under the recording's own clock.

use std::collections::VecDeque;

use rollguard::{Action, Input, Policy, PolicyConfig, Reason, Sample, Step, TargetKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::BacktestError;
use crate::recording::Recording;
use crate::rng::Rng;
use crate::spec::{BacktestSpec, Change, Injection, Traffic};

/// The draws of a replication, each from its own stream.
const STREAM_RESAMPLE: u64 = 1;
const STREAM_ONSET: u64 = 2;
const STREAM_ROUTE: u64 = 3;
const STREAM_INJECT: u64 = 4;
const STREAM_RESAMPLE_COPY: u64 = 5;

/// What happened in one replication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Its index.
    pub replication: u32,
    /// When the rollout started (the recording's first sample).
    pub started_at: Timestamp,
    /// When the injected regression began, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Timestamp>,
    /// When the candidate was promoted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Timestamp>,
    /// The first rollback away from the candidate, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackOutcome>,
    /// Units of the injected metric the candidate served from the onset until traffic
    /// was restored (or the recording ended): requests for a count metric (its
    /// `total`), samples for a value metric. Mirrored copies serve nobody and do not
    /// count. 0 without an injection.
    pub exposure: u64,
    /// Samples the policy refused (a metric it does not know, say).
    pub refused: u64,
    /// From the onset to an automated rollback at or after it: the regression was
    /// caught. Absent without an injection or without such a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_delay_ms: Option<u64>,
    /// The spec's follow-up rollout, if it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<FollowUpOutcome>,
}

/// What happened to the follow-up rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpOutcome {
    /// The version.
    pub candidate: String,
    /// When its rollout was started.
    pub started_at: Timestamp,
    /// The policy's refusal of the start, by code, if it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// When it was promoted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Timestamp>,
    /// Its rollback, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackOutcome>,
    /// The reasons of the escalations to a human during it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<Reason>,
}

impl Outcome {
    /// From the onset to an automated rollback at or after it, if both happened.
    pub fn detection_delay(&self) -> Option<u64> {
        let onset = self.onset?;
        let r = self
            .rollback
            .as_ref()
            .filter(|r| r.automated && r.at >= onset)?;
        Some(r.at - onset)
    }
}

/// A rollback, as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackOutcome {
    /// When the policy decided it.
    pub at: Timestamp,
    /// When the router acknowledged it: traffic restored. `None` if the recording
    /// ended first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<Timestamp>,
    /// The version that got the traffic.
    pub to: String,
    /// How it was chosen.
    pub target: TargetKind,
    /// Whether automation decided it.
    pub automated: bool,
    /// The policy's estimate of when the degradation started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degradation_started_at: Option<Timestamp>,
    /// Why (`gate_failed`, `breaker_open`, ...).
    pub reason: Reason,
    /// The gates whose reports the decision carried, by name, in order (a gate
    /// tripped in several scopes is named once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
}

/// The router a replication's policy drives.
#[derive(Debug)]
struct Router {
    stable: String,
    /// The candidate and its share of traffic in percent.
    candidate: Option<(String, u32)>,
    /// A version that gets a copy of every request (shadow, preview).
    mirror: Option<String>,
}

impl Router {
    fn execute(&mut self, action: &Action) {
        match action {
            Action::StartShadow { version } | Action::StartPreview { version } => {
                self.mirror = Some(version.clone());
            }
            Action::SetWeight {
                version, weight, ..
            } => {
                self.mirror = None;
                self.candidate = Some((version.clone(), *weight));
            }
            Action::Promote { version, .. } => {
                self.stable = version.clone();
                self.candidate = None;
                self.mirror = None;
            }
            Action::Rollback { to, .. } => {
                self.stable = to.clone();
                self.candidate = None;
                self.mirror = None;
            }
            _ => {}
        }
    }
}

/// Runs replication `replication` of `spec`. Pure: the same arguments give the same
/// outcome in any process, so replications may be split across workers freely.
///
/// # Errors
/// The policy's config error, or a spec that does not fit the policy or the
/// recording (an unknown candidate or injected metric).
pub fn run_replication(
    config: &PolicyConfig,
    recording: &Recording,
    spec: &BacktestSpec,
    replication: u32,
) -> Result<Outcome, BacktestError> {
    let candidate = prepare(config, spec)?;
    let stream = |s| Rng::for_stream(spec.seed, replication, s);
    let resample = |s| match spec.resample {
        Some(r) => recording.resampled(r.block_ms, &mut stream(s)),
        None => recording.samples().to_vec(),
    };
    // The samples in time order, each with whether it is the candidate's own copy
    // (`duplicate` traffic) or the recording's.
    let mut samples: Vec<(Sample, bool)> = resample(STREAM_RESAMPLE)
        .into_iter()
        .map(|s| (s, false))
        .collect();
    if spec.traffic == Traffic::Duplicate {
        samples.extend(
            resample(STREAM_RESAMPLE_COPY)
                .into_iter()
                .map(|s| (s, true)),
        );
        samples.sort_by_key(|(s, copy)| (s.at, *copy));
    }
    let start = recording.start();
    let mut run = Run {
        policy: Policy::new(config.clone(), start)?,
        router: Router {
            stable: config.stable.clone(),
            candidate: None,
            mirror: None,
        },
        acks: VecDeque::new(),
        ack_delay_ms: spec.ack_delay_ms,
        exposure_centi: 0,
        follow_up: spec.then.clone(),
        follow_up_at: None,
        outcome: Outcome {
            replication,
            started_at: start,
            onset: None,
            promoted_at: None,
            rollback: None,
            exposure: 0,
            refused: 0,
            detection_delay_ms: None,
            then: None,
        },
    };
    // A policy with a `candidate` began its rollout when it was made; its first
    // action comes with the first `advance`.
    if config.candidate.is_none() {
        let step = run.policy.handle(&Input::StartRollout {
            at: start,
            version: candidate.clone(),
        })?;
        run.record(&step);
    }
    let inject = match &spec.inject {
        Some(i) => Some(Injector::new(
            i,
            recording,
            start,
            &mut stream(STREAM_ONSET),
        )?),
        None => None,
    };
    run.outcome.onset = inject.as_ref().map(|i| i.onset);
    let mut route = stream(STREAM_ROUTE);
    let mut draws = stream(STREAM_INJECT);
    for (sample, copy) in &samples {
        run.advance(sample.at)?;
        // The version being rolled out and its onset: the follow-up's, once started.
        let (current, onset) = match &run.outcome.then {
            Some(f) => (
                f.candidate.as_str(),
                inject.as_ref().map(|i| f.started_at + (i.onset - start)),
            ),
            None => (candidate.as_str(), inject.as_ref().map(|i| i.onset)),
        };
        let current = current.to_string();
        for (arm, serves) in run.arms_for(sample, *copy, &spec.traffic, &current, &mut route) {
            let mut s = Sample {
                arm,
                ..sample.clone()
            };
            let injected = inject
                .as_ref()
                .zip(onset)
                .filter(|(i, onset)| s.arm == current && i.covers(&s, *onset));
            if let Some((i, onset)) = injected {
                if !i.apply(&mut s, onset, &mut draws) {
                    continue;
                }
                // In hundredths: the percent of the sample served there.
                run.exposure_centi += units(&s) * u64::from(serves);
            }
            match run.policy.observe(&s) {
                Ok(step) => run.record(&step),
                Err(_) => run.outcome.refused += 1,
            }
        }
    }
    run.advance(recording.end())?;
    run.outcome.exposure = run.exposure_centi / 100;
    run.outcome.detection_delay_ms = run.outcome.detection_delay();
    Ok(run.outcome)
}

/// Checks, without running a replication, that `spec` runs `config` on `recording`:
/// the refusals [`run_replication`] would raise for every replication (the spec, the
/// candidate and the follow-up, the policy's config, the injection against the
/// recording). A fleet checks each job this way before handing work out.
///
/// # Errors
/// As [`run_replication`], before it replays anything.
pub fn check(
    config: &PolicyConfig,
    recording: &Recording,
    spec: &BacktestSpec,
) -> Result<(), BacktestError> {
    prepare(config, spec)?;
    Policy::new(config.clone(), recording.start())?;
    if let Some(i) = &spec.inject {
        // The onset draw differs per replication; what is refused does not.
        let mut rng = Rng::for_stream(spec.seed, 0, STREAM_ONSET);
        Injector::new(i, recording, recording.start(), &mut rng)?;
    }
    Ok(())
}

/// The checks of a spec against a policy that come before a replication: the
/// candidate rolled out, and the follow-up's.
fn prepare(config: &PolicyConfig, spec: &BacktestSpec) -> Result<String, BacktestError> {
    spec.check()?;
    let candidate = candidate_of(config, spec)?;
    if let Some(f) = &spec.then
        && (f.candidate == candidate || !config.versions.iter().any(|v| v.id == f.candidate))
    {
        return Err(BacktestError::new(
            "unknown_reference",
            "then.candidate",
            format!("{} is not another of the policy's versions", f.candidate),
        ));
    }
    Ok(candidate)
}

/// The version rolled out: the spec's, else the policy's `candidate`.
fn candidate_of(config: &PolicyConfig, spec: &BacktestSpec) -> Result<String, BacktestError> {
    let candidate = spec
        .candidate
        .clone()
        .or_else(|| config.candidate.clone())
        .ok_or_else(|| {
            BacktestError::new(
                "unknown_reference",
                "candidate",
                "name the version to roll out: the spec's candidate or the policy's",
            )
        })?;
    if !config.versions.iter().any(|v| v.id == candidate) {
        return Err(BacktestError::new(
            "unknown_reference",
            "candidate",
            format!("{candidate} is not among the policy's versions"),
        ));
    }
    if let (Some(a), Some(b)) = (&spec.candidate, &config.candidate)
        && a != b
    {
        return Err(BacktestError::new(
            "invalid_value",
            "candidate",
            format!("the policy already rolls out {b}, not {a}"),
        ));
    }
    Ok(candidate)
}

fn gate_names(d: &rollguard::Decision) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in &d.gates {
        if !names.contains(&g.gate) {
            names.push(g.gate.clone());
        }
    }
    names
}

fn units(s: &Sample) -> u64 {
    s.total.map_or(1, |t| t.max(0) as u64)
}

struct Run {
    policy: Policy,
    router: Router,
    /// Actions issued and not yet acknowledged: (ack time, id, action).
    acks: VecDeque<(Timestamp, u64, Action)>,
    ack_delay_ms: u64,
    /// The exposure so far, in hundredths of a unit.
    exposure_centi: u64,
    /// The rollout to start once the first has ended, and when (set when it ends).
    follow_up: Option<crate::spec::FollowUp>,
    follow_up_at: Option<Timestamp>,
    outcome: Outcome,
}

impl Run {
    /// Keeps the actions to acknowledge and the outcome's promotion and rollback (the
    /// follow-up's, once it has started).
    fn record(&mut self, step: &Step) {
        for d in &step.decisions {
            let (promoted_at, rollback) = match &mut self.outcome.then {
                Some(f) => {
                    if matches!(d.action, Action::Escalate {}) {
                        f.escalations.push(d.reason);
                    }
                    (&mut f.promoted_at, &mut f.rollback)
                }
                None => (&mut self.outcome.promoted_at, &mut self.outcome.rollback),
            };
            match &d.action {
                Action::Promote { .. } if promoted_at.is_none() => *promoted_at = Some(d.at),
                Action::Rollback {
                    to,
                    target,
                    automated,
                    degradation_started_at,
                    ..
                } if rollback.is_none() => {
                    *rollback = Some(RollbackOutcome {
                        at: d.at,
                        restored_at: None,
                        to: to.clone(),
                        target: *target,
                        automated: *automated,
                        degradation_started_at: *degradation_started_at,
                        reason: d.reason,
                        gates: gate_names(d),
                    });
                }
                _ => {}
            }
            if let Some(id) = d.action_id {
                self.acks
                    .push_back((d.at + self.ack_delay_ms, id, d.action.clone()));
            }
        }
    }

    /// The first rollout ended at `at` (its rollback or promotion acknowledged): the
    /// follow-up, if any, is due `after_ms` later.
    fn first_ended(&mut self, at: Timestamp) {
        if self.outcome.then.is_none()
            && self.follow_up_at.is_none()
            && let Some(f) = &self.follow_up
        {
            self.follow_up_at = Some(at.saturating_add(f.after_ms));
        }
    }

    /// Starts the follow-up rollout at `at`.
    fn start_follow_up(&mut self, at: Timestamp) -> Option<Step> {
        let f = self.follow_up.take()?;
        self.follow_up_at = None;
        let mut then = FollowUpOutcome {
            candidate: f.candidate.clone(),
            started_at: at,
            refused: None,
            promoted_at: None,
            rollback: None,
            escalations: Vec::new(),
        };
        let step = match self.policy.handle(&Input::StartRollout {
            at,
            version: f.candidate,
        }) {
            Ok(step) => Some(step),
            Err(e) => {
                then.refused = Some(e.code.as_str().into());
                None
            }
        };
        self.outcome.then = Some(then);
        step
    }

    /// Acknowledges the actions and fires the timers due at or before `t`, in time
    /// order (acknowledgements first at equal times).
    fn advance(&mut self, t: Timestamp) -> Result<(), BacktestError> {
        loop {
            let ack = self.acks.front().map(|a| a.0).filter(|&a| a <= t);
            let deadline = self.policy.next_deadline().filter(|&d| d <= t);
            let follow_up = self.follow_up_at.filter(|&f| f <= t);
            let first = [ack, deadline, follow_up].into_iter().flatten().min();
            let step = match first {
                None => break,
                Some(a) if ack == Some(a) => {
                    let Some((_, id, action)) = self.acks.pop_front() else {
                        break;
                    };
                    self.router.execute(&action);
                    let at = a.max(self.policy.now());
                    let rollback = match &mut self.outcome.then {
                        Some(f) => &mut f.rollback,
                        None => &mut self.outcome.rollback,
                    };
                    if matches!(action, Action::Rollback { .. })
                        && let Some(r) = rollback.as_mut().filter(|r| r.restored_at.is_none())
                    {
                        r.restored_at = Some(at);
                    }
                    if matches!(action, Action::Rollback { .. } | Action::Promote { .. }) {
                        self.first_ended(at);
                    }
                    // An action that timed out is refused as unknown: the policy has
                    // already escalated and moved on, and so does the router.
                    self.policy.handle(&Input::Ack { at, action_id: id }).ok()
                }
                Some(d) if deadline == Some(d) => {
                    let at = d.max(self.policy.now());
                    let step = self.policy.tick(at)?;
                    if self.policy.next_deadline().is_some_and(|n| n <= at) {
                        return Err(BacktestError::new(
                            "invalid_value",
                            "",
                            format!("next_deadline stuck at {at}"),
                        ));
                    }
                    Some(step)
                }
                Some(f) => self.start_follow_up(f.max(self.policy.now())),
            };
            if let Some(step) = step {
                self.record(&step);
            }
        }
        Ok(())
    }

    /// The arms a recorded sample reaches, each with the percent of it that serves
    /// requests there (a mirror's copy serves none). `copy` marks the candidate's own
    /// copy of `duplicate` traffic.
    fn arms_for(
        &self,
        sample: &Sample,
        copy: bool,
        traffic: &Traffic,
        candidate: &str,
        route: &mut Rng,
    ) -> Vec<(String, u32)> {
        let stable = self.router.stable.clone();
        let live = self
            .router
            .candidate
            .as_ref()
            .filter(|(v, _)| v == candidate);
        let mirror = self.router.mirror.clone();
        match traffic {
            Traffic::Split => match (mirror, live) {
                (Some(m), _) => vec![(stable, 100), (m, 0)],
                (None, Some((v, w))) if route.next_f64() * 100.0 < f64::from(*w) => {
                    vec![(v.clone(), 100)]
                }
                _ => vec![(stable, 100)],
            },
            Traffic::Duplicate if copy => match (mirror, live) {
                (Some(m), _) => vec![(m, 0)],
                (None, Some((v, w))) => vec![(v.clone(), *w)],
                _ => Vec::new(),
            },
            Traffic::Duplicate => vec![(stable, 100)],
            Traffic::Recorded { candidate_arm } if sample.arm == *candidate_arm => {
                match (mirror, live) {
                    (Some(m), _) => vec![(m, 0)],
                    (None, Some(_)) => vec![(candidate.to_string(), 100)],
                    _ if stable == candidate => vec![(stable, 100)],
                    _ => Vec::new(),
                }
            }
            Traffic::Recorded { .. } => vec![(stable, 100)],
        }
    }
}

/// The injection of one replication, with its drawn onset.
struct Injector {
    metric: String,
    change: Change,
    onset: Timestamp,
    duration_ms: Option<u64>,
    /// For `error_rate`: the probability a non-event becomes an event.
    flip: f64,
}

impl Injector {
    fn new(
        i: &Injection,
        recording: &Recording,
        start: Timestamp,
        rng: &mut Rng,
    ) -> Result<Self, BacktestError> {
        let after = match i.onset_max_ms {
            Some(max) => rng.between(i.onset_ms, max),
            None => i.onset_ms,
        };
        let mut flip = 0.0;
        if let Change::ErrorRate { multiplier } = i.change {
            let rate = recording.event_rate(&i.metric).ok_or_else(|| {
                BacktestError::new(
                    "invalid_value",
                    "inject.metric",
                    format!("the recording has no counts of {}", i.metric),
                )
            })?;
            if rate <= 0.0 || rate * multiplier >= 1.0 {
                return Err(BacktestError::new(
                    "invalid_value",
                    "inject.change.multiplier",
                    format!("the recording's rate {rate} cannot be multiplied by {multiplier}"),
                ));
            }
            flip = (multiplier - 1.0) * rate / (1.0 - rate);
        } else if !matches!(i.change, Change::Silence {})
            && !recording
                .samples()
                .iter()
                .any(|s| s.metric == i.metric && s.value.is_some())
        {
            return Err(BacktestError::new(
                "invalid_value",
                "inject.metric",
                format!("the recording has no values of {}", i.metric),
            ));
        }
        Ok(Self {
            metric: i.metric.clone(),
            change: i.change,
            onset: start.saturating_add(after),
            duration_ms: i.duration_ms,
            flip,
        })
    }

    /// Whether the change applies to `s`, given the current rollout's onset.
    fn covers(&self, s: &Sample, onset: Timestamp) -> bool {
        let within = self
            .duration_ms
            .is_none_or(|d| s.at < onset.saturating_add(d));
        s.at >= onset && within && (self.metric == "*" || s.metric == self.metric)
    }

    /// Changes `s`; `false` when the sample is dropped instead (`silence`).
    fn apply(&self, s: &mut Sample, onset: Timestamp, rng: &mut Rng) -> bool {
        match self.change {
            Change::Silence {} => return false,
            Change::Drift { per_hour } => {
                let hours = (s.at - onset) as f64 / 3_600_000.0;
                s.value = s.value.map(|v| v + per_hour * hours);
            }
            Change::Shift { delta } => s.value = s.value.map(|v| v + delta),
            Change::Ratio { factor } => s.value = s.value.map(|v| v * factor),
            Change::Tail { share, factor } => {
                if rng.next_f64() < share {
                    s.value = s.value.map(|v| v * factor);
                }
            }
            Change::ErrorRate { .. } => {
                if let (Some(e), Some(t)) = (s.events, s.total) {
                    let extra = rng.binomial((t - e).max(0) as u64, self.flip);
                    s.events = Some(e + extra as i64);
                }
            }
        }
        true
    }
}
