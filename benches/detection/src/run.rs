//! Driving policies through one replication: the same stream feeds every method.
//!
//! Time advances in whole seconds. At second `t` each live policy is first ticked at every
//! deadline up to `t` (acknowledging each action at once, as a router that switches
//! instantly would), then gets that second's requests of both arms as columns: latencies
//! with `observe_values`, errors as one `observe_counts` row of `(errors, requests)`. All
//! requests of one second carry the second's timestamp, so both arms' columns are in time
//! order. A policy is done at its first `rollback` decision.

use std::collections::VecDeque;

use rollguard::{Action, Input, Policy, Step};

use crate::method::{CANDIDATE_VERSION, ERRORS, LATENCY, Method, STABLE_VERSION};
use crate::stream::{CANDIDATE, STABLE, Scenario, Second, Stream, Traffic, replication_seed};

/// What one method did in one replication.
///
/// Counts run from the scenario's onset (the canary's start, except for a change-point
/// alternative): the requests, errors and exposure between the onset and the rollback
/// (or the horizon). A rollback at or before a later onset judged healthy data only: it
/// is `early`, a false alarm before the change, and its counts are from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Seconds from the canary's start to the rollback, if there was one in the horizon.
    pub rollback_s: Option<f64>,
    /// Whether the rollback came at or before a later onset (never for onset 0).
    pub early: bool,
    /// Seconds from the onset to the rollback, for a rollback after the onset.
    pub delay_s: Option<f64>,
    /// Candidate requests served from the onset until the rollback (or the horizon).
    pub candidate_requests: u64,
    /// Stable requests served from the onset until the rollback (or the horizon).
    pub stable_requests: u64,
    /// Errors on both arms from the onset until the rollback.
    pub error_events: u64,
    /// Candidate requests the regression changed, before the rollback: the exposure.
    pub exposure: u64,
    /// Gates tripped in the rollback decision (empty without a rollback).
    pub tripped: Vec<String>,
}

/// Running totals of the stream so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    requests: [u64; 2],
    errors: u64,
    exposure: u64,
}

/// Where the onset is, and the totals there once it has passed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Onset {
    at_ms: u64,
    totals: Option<Totals>,
}

impl Totals {
    fn add(&mut self, s: &Second) {
        for arm in [STABLE, CANDIDATE] {
            self.requests[arm] += s.arms[arm].requests();
            self.errors += s.arms[arm].errors;
        }
        self.exposure += s.arms[CANDIDATE].affected;
    }

    fn outcome(&self, onset: &Onset, rollback_ms: Option<u64>, tripped: Vec<String>) -> Outcome {
        let early = onset.at_ms > 0 && rollback_ms.is_some_and(|d| d <= onset.at_ms);
        let since = onset.totals.filter(|_| !early).unwrap_or_default();
        Outcome {
            rollback_s: rollback_ms.map(|d| d as f64 / 1000.0),
            early,
            delay_s: rollback_ms
                .filter(|_| !early)
                .map(|d| d.saturating_sub(onset.at_ms) as f64 / 1000.0),
            candidate_requests: self.requests[CANDIDATE] - since.requests[CANDIDATE],
            stable_requests: self.requests[STABLE] - since.requests[STABLE],
            error_events: self.errors - since.errors,
            exposure: self.exposure - since.exposure,
            tripped,
        }
    }
}

/// A method's policy with the rollout started and its canary step acknowledged at time 0.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The method.
    pub method: Method,
    policy: Policy,
    latency: bool,
    errors: bool,
}

impl Prepared {
    /// Builds the method's policy at time 0, starts the rollout of the candidate and
    /// acknowledges its `set_weight`.
    ///
    /// # Errors
    /// The config is refused, or the policy's first action is not a `set_weight` of
    /// `traffic.weight` percent (the streams' split would not be the policy's).
    pub fn new(method: &Method, traffic: Traffic) -> Result<Self, String> {
        let name = &method.name;
        let config = method.config(traffic.weight).to_string();
        let mut policy =
            Policy::from_json(&config, 0).map_err(|e| format!("method {name}: {e}"))?;
        let step = policy
            .handle(&Input::StartRollout {
                at: 0,
                version: CANDIDATE_VERSION.into(),
            })
            .map_err(|e| format!("method {name}: start_rollout: {e}"))?;
        let first = step
            .actions()
            .next()
            .ok_or(format!("method {name}: no action at start"))?;
        match &first.action {
            Action::SetWeight { weight, .. } if *weight == traffic.weight => {}
            other => return Err(format!("method {name}: first action {other:?}")),
        }
        let id = first.action_id.ok_or("set_weight without an action id")?;
        let _ = policy
            .handle(&Input::Ack {
                at: 0,
                action_id: id,
            })
            .map_err(|e| format!("method {name}: ack: {e}"))?;
        Ok(Self {
            latency: method.reads(LATENCY),
            errors: method.reads(ERRORS),
            method: method.clone(),
            policy,
        })
    }
}

/// One method's policy during a replication.
struct Runner {
    policy: Policy,
    latency: bool,
    errors: bool,
    done: Option<Outcome>,
    at: Vec<u64>,
    /// `policy.next_deadline()` as of the last tick or acknowledgement: observations
    /// leave the timers alone (checked in debug builds), and asking every second for
    /// every method cost more than a tenth of a run.
    deadline: Option<u64>,
}

impl Runner {
    fn new(p: &Prepared) -> Self {
        Self {
            policy: p.policy.clone(),
            latency: p.latency,
            errors: p.errors,
            done: None,
            at: Vec::new(),
            deadline: p.policy.next_deadline(),
        }
    }

    /// Ticks every deadline up to `now_ms`; records the first rollback.
    fn advance(&mut self, now_ms: u64, totals: &Totals, onset: &Onset) {
        debug_assert_eq!(self.deadline, self.policy.next_deadline());
        // A policy whose deadline does not move after a tick would loop; none should.
        for _ in 0..10_000 {
            match self.deadline {
                Some(d) if d <= now_ms && self.done.is_none() => {
                    let step = self.policy.tick(d).expect("a tick at the deadline");
                    self.act(step, totals, onset);
                    self.deadline = self.policy.next_deadline();
                }
                _ => return,
            }
        }
        panic!("the policy's deadline did not move");
    }

    /// Acknowledges every action, and stops at a rollback.
    fn act(&mut self, step: Step, totals: &Totals, onset: &Onset) {
        let mut steps = VecDeque::from([step]);
        while let Some(step) = steps.pop_front() {
            for d in &step.decisions {
                if let Action::Rollback { .. } = d.action {
                    let tripped = d
                        .gates
                        .iter()
                        .filter(|g| g.tripped && !g.dry_run)
                        .map(|g| g.gate.clone())
                        .collect();
                    self.done = Some(totals.outcome(onset, Some(d.at), tripped));
                    return;
                }
                if let Some(id) = d.action_id {
                    let next = self
                        .policy
                        .handle(&Input::Ack {
                            at: step.at,
                            action_id: id,
                        })
                        .expect("an acknowledgement");
                    steps.push_back(next);
                }
            }
        }
    }

    /// Feeds one second of both arms.
    fn feed(&mut self, s: &Second, now_ms: u64) {
        for (arm, version) in [(STABLE, STABLE_VERSION), (CANDIDATE, CANDIDATE_VERSION)] {
            let a = &s.arms[arm];
            if a.latency.is_empty() {
                continue;
            }
            if self.latency {
                self.at.clear();
                self.at.resize(a.latency.len(), now_ms);
                let step = self
                    .policy
                    .observe_values(version, LATENCY, &self.at, &a.latency)
                    .expect("latency samples");
                debug_assert!(step.decisions.is_empty());
            }
            if self.errors {
                let step = self
                    .policy
                    .observe_counts(
                        version,
                        ERRORS,
                        &[now_ms],
                        &[a.errors as i64],
                        &[a.requests() as i64],
                    )
                    .expect("error counts");
                debug_assert!(step.decisions.is_empty());
            }
        }
    }
}

/// Runs replication `rep` of scenario number `index` for every method over `horizon_s`
/// seconds, and returns one outcome per method, in order.
pub fn replicate(
    scenario: &Scenario,
    index: usize,
    methods: &[Prepared],
    traffic: Traffic,
    horizon_s: u64,
    seed: u64,
    rep: u64,
) -> Vec<Outcome> {
    let mut stream = Stream::new(
        *scenario,
        traffic,
        horizon_s,
        replication_seed(seed, index, rep),
    );
    let mut runners: Vec<Runner> = methods.iter().map(Runner::new).collect();
    let mut totals = Totals::default();
    let mut second = Second::default();
    let mut onset = Onset {
        at_ms: scenario.onset_s * 1000,
        totals: None,
    };
    for t in 0..horizon_s {
        let now_ms = t * 1000;
        let mut live = false;
        for r in &mut runners {
            r.advance(now_ms, &totals, &onset);
            live |= r.done.is_none();
        }
        if !live {
            break;
        }
        if t == scenario.onset_s {
            onset.totals = Some(totals);
        }
        stream.next_second(&mut second);
        for r in runners.iter_mut().filter(|r| r.done.is_none()) {
            r.feed(&second, now_ms);
        }
        totals.add(&second);
    }
    runners
        .into_iter()
        .map(|mut r| {
            r.advance(horizon_s * 1000, &totals, &onset);
            r.done
                .unwrap_or_else(|| totals.outcome(&onset, None, Vec::new()))
        })
        .collect()
}
