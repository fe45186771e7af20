//! Tells a replayed trace as a story for people: one line per meaningful moment, with
//! a clock since the start, what the policy decided or what happened, and why.
//!
//! Routine evidence is left out (passing gate evaluations, acknowledgements, repeated
//! holds, which are folded into one line). A gate's failures are shown as they build up
//! towards its trip, with the observed value against its bound. A rollback shows the
//! gates behind it and the estimated start of the degradation.
//!
//! A scenario may declare the known onsets of its regressions in its description, one
//! per line, as `- onset VERSION METRIC MS (…): note` (MS from the start). The
//! narrative marks each one where it falls, and the summary says how long the policy
//! took to act after it.

use std::collections::BTreeSet;

use rollguard::{
    Action, Aliases, Autocorrelation, CanaryStep, Decision, Direction, Divergence, EffectSize,
    Event, EventKind, Evidence, GateReport, Margin, PolicyConfig, Reason, Rule, Scenario, Stat,
    Status, Strategy, Timestamp, TraceEntry, Validator, Verdict, Worse,
};

use crate::text::{clock, duration, input_summary, snake, stat_value};

/// A regression the scenario says begins at a known time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Onset {
    /// The version that regresses.
    pub(crate) version: String,
    /// The metric that shows it.
    pub(crate) metric: String,
    /// When, in ms from the start.
    pub(crate) offset_ms: u64,
    /// What the description says about it.
    pub(crate) note: String,
}

/// Reads `- onset VERSION METRIC MS …: note` lines from a scenario description.
pub(crate) fn onsets_from_description(description: &str) -> Vec<Onset> {
    let mut onsets: Vec<Onset> = description
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("- onset ")?;
            let mut words = rest.split_whitespace();
            let version = words.next()?.to_string();
            let metric = words.next()?.to_string();
            let offset_ms = words.next()?.parse().ok()?;
            let note = rest
                .split_once(": ")
                .map(|(_, n)| n.trim().to_string())
                .unwrap_or_default();
            Some(Onset {
                version,
                metric,
                offset_ms,
                note,
            })
        })
        .collect();
    onsets.sort_by_key(|o| o.offset_ms);
    onsets
}

/// What one version went through, for the summary.
#[derive(Debug, Clone, Default)]
struct VersionStory {
    promoted_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    first_trip: Option<(Timestamp, String)>,
    holds: u32,
    hold_reason: Option<Reason>,
    /// Graduated responses and gradual-rollback steps, in order: `(at, what)`.
    rungs: Vec<(Timestamp, String)>,
    rollback: Option<RollbackStory>,
    /// Side effects compensated, in order, and when the last was acknowledged.
    compensated: Vec<String>,
    compensated_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct RollbackStory {
    at: Timestamp,
    to: String,
    reason: Reason,
    automated: bool,
    degradation_started_at: Option<Timestamp>,
}

/// A run of identical holds, folded into one line.
#[derive(Debug, Clone)]
struct HoldRun {
    reason: Reason,
    repeats: u32,
    first_repeat: Timestamp,
    last: Timestamp,
}

/// Builds the story line by line.
struct Narrator<'a> {
    config: &'a PolicyConfig,
    start: Timestamp,
    lines: Vec<String>,
    onsets: Vec<Onset>,
    /// Onsets already marked.
    marked: usize,
    /// Gates whose failing streak is being shown.
    failing: BTreeSet<String>,
    hold: Option<HoldRun>,
    aliases: Aliases,
    /// The current rollout's version and the label of its latest stage.
    stage_label: Option<(String, String)>,
    /// Per version, in order of first appearance.
    stories: Vec<(String, VersionStory)>,
    refused: Vec<String>,
}

/// Markers in the second column: what kind of line this is, at a glance.
const ACTION: &str = ">>";
const GOOD: &str = "ok";
const BAD: &str = "!!";
const ROLLBACK: &str = "<<";
const HOLD: &str = "==";
const INFO: &str = "..";
const ONSET: &str = "~~";
const REFUSED: &str = "xx";
/// Continuation lines line up under the text.
const INDENT: &str = "              ";

impl<'a> Narrator<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        let stable = scenario.config.stable.clone();
        Self {
            config: &scenario.config,
            start: scenario.start,
            lines: Vec::new(),
            onsets: onsets_from_description(&scenario.description),
            marked: 0,
            failing: BTreeSet::new(),
            hold: None,
            aliases: Aliases {
                stable: stable.clone(),
                candidate: None,
                previous: None,
                golden: stable,
            },
            stage_label: None,
            stories: Vec::new(),
            refused: Vec::new(),
        }
    }

    fn clock(&self, at: Timestamp) -> String {
        clock(at.saturating_sub(self.start))
    }

    /// Marks the known onsets that fall at or before `at`.
    fn mark_onsets(&mut self, at: Timestamp) {
        while let Some(o) = self.onsets.get(self.marked) {
            let when = self.start.saturating_add(o.offset_ms);
            if when > at {
                break;
            }
            let text = format!(
                "{:>8}  {ONSET} known regression onset: {} {}{}",
                self.clock(when),
                o.version,
                o.metric,
                if o.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.note)
                }
            );
            self.marked += 1;
            self.lines.push(text);
        }
    }

    /// Ends a run of holds with one line for its repeats.
    fn flush_hold(&mut self) {
        if let Some(run) = self.hold.take().filter(|r| r.repeats > 0) {
            let text = format!(
                "{:>8}  {HOLD} held again at every check until {} ({} more, {})",
                self.clock(run.first_repeat),
                self.clock(run.last),
                run.repeats,
                snake(&run.reason)
            );
            self.lines.push(text);
        }
    }

    /// Adds a line (and continuation lines) at `at`.
    fn emit(&mut self, at: Timestamp, marker: &str, text: &str, more: &[String]) {
        self.flush_hold();
        self.mark_onsets(at);
        self.lines
            .push(format!("{:>8}  {marker} {text}", self.clock(at)));
        for m in more {
            self.lines.push(format!("{INDENT}{m}"));
        }
    }

    fn story(&mut self, version: &str) -> &mut VersionStory {
        let i = match self.stories.iter().position(|(v, _)| v == version) {
            Some(i) => i,
            None => {
                self.stories
                    .push((version.to_string(), VersionStory::default()));
                self.stories.len() - 1
            }
        };
        &mut self.stories[i].1
    }

    fn consecutive(&self, gate: &str) -> u32 {
        self.config
            .gates
            .iter()
            .find(|g| g.name == gate)
            .map_or(1, |g| g.persistence.consecutive)
    }

    // ------------------------------------------------------------------ entries

    fn entry(&mut self, entry: &TraceEntry) {
        if let Some(e) = &entry.error {
            let at = entry.input.at().unwrap_or(self.start);
            let what = input_summary(&entry.input);
            self.refused
                .push(format!("{what} at {}: {}", self.clock(at), e.code.as_str()));
            self.emit(
                at,
                REFUSED,
                &format!("REFUSED {what}: {} ({})", e.code.as_str(), e.message),
                &[],
            );
            return;
        }
        let Some(step) = &entry.step else { return };
        // A step may hold several moments (timers that fired on the way to its time):
        // tell them in time order; at each moment, causes (analysis, trips), then the
        // decisions, with their consequences (cooldown, breaker) right after the first
        // action.
        let mut times: Vec<Timestamp> = step
            .decisions
            .iter()
            .map(|d| d.at)
            .chain(step.events.iter().map(|e| e.at))
            .collect();
        times.sort_unstable();
        times.dedup();
        for t in times {
            let events: Vec<&Event> = step.events.iter().filter(|e| e.at == t).collect();
            let (effects, causes): (Vec<&Event>, Vec<&Event>) =
                events.iter().partition(|e| is_effect(&e.kind));
            for e in &causes {
                self.event(e, &events);
            }
            let decisions: Vec<&Decision> = step.decisions.iter().filter(|d| d.at == t).collect();
            let mut effects_told = false;
            for d in decisions {
                self.decision(d);
                if d.action_id.is_some() && !effects_told {
                    for e in &effects {
                        self.event(e, &events);
                    }
                    effects_told = true;
                }
            }
            if !effects_told {
                for e in &effects {
                    self.event(e, &events);
                }
            }
        }
    }

    // ------------------------------------------------------------------ decisions

    fn decision(&mut self, d: &Decision) {
        let at = d.at;
        match &d.action {
            Action::StartShadow { version } => {
                let text = self.traffic_text(version, d.reason, "shadow", || {
                    format!("mirror traffic to {version} (shadow: it serves nothing)")
                });
                self.emit(at, ACTION, &text, &[]);
            }
            Action::StartPreview { version } => {
                let text = self.traffic_text(version, d.reason, "preview", || {
                    format!("deploy {version} as the blue-green preview")
                });
                self.emit(at, ACTION, &text, &[]);
            }
            Action::SetWeight {
                version, weight, ..
            } => {
                if d.reason == Reason::GradualRollback {
                    self.story(version)
                        .rungs
                        .push((at, format!("stepped down to {weight}%")));
                }
                let text = self.traffic_text(version, d.reason, &format!("{weight}%"), || {
                    if d.reason == Reason::GradualRollback {
                        format!("STEP DOWN: route {weight}% of traffic to {version}")
                    } else {
                        format!("route {weight}% of traffic to {version}")
                    }
                });
                self.emit(at, ACTION, &text, &[]);
            }
            Action::Promote { version, from } => {
                self.story(version).promoted_at = Some(at);
                let text = self.traffic_text(version, d.reason, "promotion", || {
                    format!("PROMOTE {version}: all traffic to {version} ({from} stays warm)")
                });
                self.emit(at, ACTION, &text, &[]);
            }
            Action::Rollback {
                from,
                to,
                target,
                automated,
                degradation_started_at,
            } => {
                let who = if *automated { "automated" } else { "operator" };
                let mut more = gate_lines(self.config, &d.gates);
                if let Some(onset) = degradation_started_at {
                    more.push(format!(
                        "degradation started ~{}{}: reprocess {from}'s work since then",
                        self.clock(*onset),
                        self.known_onset_note(from, *onset)
                    ));
                }
                self.emit(
                    at,
                    ROLLBACK,
                    &format!(
                        "ROLLBACK {from} -> {to} ({who}: {}; target {})",
                        snake(&d.reason),
                        snake(target)
                    ),
                    &more,
                );
                self.story(from).rollback = Some(RollbackStory {
                    at,
                    to: to.clone(),
                    reason: d.reason,
                    automated: *automated,
                    degradation_started_at: *degradation_started_at,
                });
                self.stage_label = None;
            }
            Action::PauseForApproval {
                version,
                deadline,
                on_timeout,
            } => {
                let text = format!(
                    "PAUSE {version} for approval ({}): resume approves; at {} it will {}",
                    snake(&d.reason),
                    self.clock(*deadline),
                    snake(on_timeout)
                );
                self.emit(at, HOLD, &text, &[]);
            }
            Action::Compensate {
                version,
                effect_id,
                undo,
            } => {
                let retry = if d.reason == Reason::OperatorRetry {
                    " (operator retry)"
                } else {
                    ""
                };
                let text = format!(
                    "COMPENSATE {version}'s side effect {effect_id}{retry}: run its undo (newest first)"
                );
                let undo = serde_json::to_string(undo).unwrap_or_default();
                self.emit(at, ACTION, &text, &[format!("undo: {undo}")]);
            }
            Action::PauseOnboarding { version } => {
                self.story(version)
                    .rungs
                    .push((at, "onboarding paused".into()));
                let text = format!(
                    "PAUSE ONBOARDING to {version}: tenants new to it stay on the stable version ({})",
                    snake(&d.reason)
                );
                self.emit(at, ACTION, &text, &[]);
            }
            Action::RouteBack {
                version,
                to,
                scopes,
            } => {
                let names: Vec<String> = scopes.iter().map(|k| k.label()).collect();
                let names = names.join(", ");
                self.story(version)
                    .rungs
                    .push((at, format!("routed back {names}")));
                let text = format!(
                    "ROUTE BACK {names} to {to}; the rest of the split stays ({})",
                    snake(&d.reason)
                );
                self.emit(at, ACTION, &text, &[]);
            }
            Action::Freeze { version } => {
                self.story(version).rungs.push((at, "frozen".into()));
                let text = format!(
                    "FREEZE {version} at its weight: the stage timers stop until resume ({})",
                    snake(&d.reason)
                );
                self.emit(at, HOLD, &text, &[]);
            }
            Action::Hold {} => self.hold(d),
            Action::Escalate {} => {
                // An escalation that explains the hold just told does not end its run
                // of repeats, so it is pushed here rather than through `emit`.
                if self.hold.as_ref().is_none_or(|r| r.reason != d.reason) {
                    self.flush_hold();
                }
                self.mark_onsets(at);
                // The hold just told explains itself; otherwise say why.
                let text = match &self.hold {
                    Some(r) if r.reason == d.reason => {
                        format!("PAGE on-call: {}", snake(&d.reason))
                    }
                    _ => format!("PAGE on-call: {}", explain(d.reason)),
                };
                self.lines
                    .push(format!("{:>8}  {BAD} {text}", self.clock(at)));
                if !d.detail.is_empty() {
                    self.lines.push(format!("{INDENT}{}", d.detail));
                }
            }
            _ => {
                let text = format!(
                    "{} ({})",
                    crate::text::action_kind(&d.action),
                    snake(&d.reason)
                );
                self.emit(at, ACTION, &text, &[]);
            }
        }
    }

    /// `rollout of v3 starts: …`, `v3 passed 5%: …`, or the action with its reason.
    fn traffic_text(
        &mut self,
        version: &str,
        reason: Reason,
        label: &str,
        what: impl FnOnce() -> String,
    ) -> String {
        let what = what();
        let previous = self
            .stage_label
            .as_ref()
            .filter(|(v, _)| v == version)
            .map(|(_, l)| l.clone());
        self.stage_label = Some((version.to_string(), label.to_string()));
        match (reason, previous) {
            (Reason::RolloutStarted, _) => format!("rollout of {version} starts: {what}"),
            (Reason::StagePassed, Some(p)) => format!("{version} passed {p}: {what}"),
            (reason, _) => format!("{what} ({})", snake(&reason)),
        }
    }

    fn hold(&mut self, d: &Decision) {
        if let Some(run) = self.hold.as_mut().filter(|r| r.reason == d.reason) {
            if run.repeats == 0 {
                run.first_repeat = d.at;
            }
            run.repeats += 1;
            run.last = d.at;
        } else {
            let more = gate_lines(self.config, &d.gates);
            let text = format!("HOLD, no rollback: {}", explain(d.reason));
            self.emit(d.at, HOLD, &text, &more);
            self.hold = Some(HoldRun {
                reason: d.reason,
                repeats: 0,
                first_repeat: d.at,
                last: d.at,
            });
        }
        if let Some(version) = d.gates.first().map(|g| g.arm.clone()) {
            let story = self.story(&version);
            story.holds += 1;
            story.hold_reason.get_or_insert(d.reason);
        }
    }

    /// ` (= the known onset)` or ` (known onset 1:33:30: 30s late)` when the scenario
    /// declares an onset for `version`.
    fn known_onset_note(&self, version: &str, estimate: Timestamp) -> String {
        self.onsets
            .iter()
            .filter(|o| o.version == version)
            .map(|o| self.start.saturating_add(o.offset_ms))
            .min_by_key(|t| t.abs_diff(estimate))
            .map(|known| match estimate.cmp(&known) {
                std::cmp::Ordering::Equal => " (= the known onset)".to_string(),
                o => format!(
                    " (known onset {}: {} {})",
                    self.clock(known),
                    duration(known.abs_diff(estimate)),
                    if o == std::cmp::Ordering::Greater {
                        "late"
                    } else {
                        "early"
                    }
                ),
            })
            .unwrap_or_default()
    }

    // ------------------------------------------------------------------ events

    fn event(&mut self, e: &Event, same_time: &[&Event]) {
        let at = e.at;
        match &e.kind {
            EventKind::Analysis {
                reports, scoped, ..
            } => self.analysis(at, reports.iter().chain(scoped), same_time),
            EventKind::GateTripped {
                gate,
                dry_run: true,
                scope,
            } => {
                let gate = gate_name(gate, scope.as_ref());
                self.emit(
                    at,
                    INFO,
                    &format!("dry-run gate {gate} tripped: reported only, never acted on"),
                    &[],
                );
            }
            EventKind::GateCleared {
                gate,
                dry_run,
                scope,
            } => {
                let gate = gate_name(gate, scope.as_ref());
                self.failing.remove(&gate);
                let kind = if *dry_run { "dry-run gate" } else { "gate" };
                self.emit(at, INFO, &format!("{kind} {gate} cleared"), &[]);
            }
            EventKind::StageStarted {
                phase: rollguard::Phase::Bake,
                ends_at,
                ..
            } => {
                let until = ends_at.map_or(String::new(), |t| format!(" until {}", self.clock(t)));
                let text = format!(
                    "{} serves all traffic; post-promotion bake{until}",
                    self.aliases.stable
                );
                self.emit(at, INFO, &text, &[]);
            }
            EventKind::GradualStepStarted {
                step,
                steps,
                weight,
                ends_at,
            } => {
                let until = ends_at.map_or(String::new(), |t| format!(" until {}", self.clock(t)));
                let next = if step < steps {
                    "the next step"
                } else {
                    "the full rollback"
                };
                let text = format!(
                    "gradual rollback step {step}/{steps} at {weight}%: bakes{until}, then {next} if the gates still fail"
                );
                self.emit(at, INFO, &text, &[]);
            }
            EventKind::RolledBack { from, to } => {
                let text = format!("rollback done: {to} serves all traffic, {from} is out");
                self.emit(at, INFO, &text, &[]);
            }
            EventKind::RolloutCompleted { version } => {
                self.story(version).completed_at = Some(at);
                self.stage_label = None;
                let golden = &self.aliases.golden;
                let note = if golden == version {
                    String::new()
                } else {
                    format!("; golden stays {golden} until a human validates")
                };
                let text = format!("rollout of {version} COMPLETE (validated by rollout{note})");
                self.emit(at, GOOD, &text, &[]);
            }
            EventKind::VersionValidated {
                version,
                by: Validator::Operator,
            } => {
                self.emit(at, INFO, &format!("operator validated {version}"), &[]);
            }
            EventKind::AliasesChanged(a) => {
                if a.golden != self.aliases.golden {
                    self.emit(at, INFO, &format!("golden is now {}", a.golden), &[]);
                }
                self.aliases = a.clone();
            }
            EventKind::CooldownStarted { until } => {
                let text = format!(
                    "cooldown: no automated rollback until {}",
                    self.clock(*until)
                );
                self.emit(at, INFO, &text, &[]);
            }
            EventKind::CooldownEnded {} => {
                self.emit(
                    at,
                    INFO,
                    "cooldown over: automated rollbacks allowed again",
                    &[],
                );
            }
            EventKind::BreakerTripped { rollbacks } => {
                let b = self.config.safety.breaker;
                let text = format!(
                    "CIRCUIT BREAKER TRIPPED: {rollbacks} automated rollbacks within {}",
                    duration(b.window_ms)
                );
                let more = [format!(
                    "traffic pinned to golden {}; automation stopped until an operator clears it",
                    self.aliases.golden
                )];
                self.emit(at, BAD, &text, &more);
            }
            EventKind::BreakerCleared {} => {
                self.emit(
                    at,
                    INFO,
                    "operator cleared the breaker: automation resumes",
                    &[],
                );
            }
            EventKind::Halted { reason } => {
                let text = format!(
                    "automation HALTED ({}): resume retries the action, revert_now overrides",
                    snake(reason)
                );
                self.emit(at, BAD, &text, &[]);
            }
            EventKind::AckTimedOut { action_id } => {
                let text = format!("action {action_id} was not acknowledged in time");
                self.emit(at, BAD, &text, &[]);
            }
            EventKind::ActionFailed { action_id, reason } => {
                self.emit(
                    at,
                    BAD,
                    &format!("action {action_id} failed: {reason}"),
                    &[],
                );
            }
            EventKind::Paused {
                by: rollguard::PauseKind::Operator,
            } => {
                self.emit(at, INFO, "operator paused the rollout", &[]);
            }
            EventKind::Resumed { by } => {
                self.emit(at, INFO, &format!("resumed ({})", snake(by)), &[]);
            }
            EventKind::ApprovalTimedOut { on_timeout } => {
                let text = format!("approval timed out: {}", snake(on_timeout));
                self.emit(at, BAD, &text, &[]);
            }
            EventKind::CommandAccepted { command } => {
                self.emit(at, INFO, &format!("operator: {command}"), &[]);
            }
            EventKind::VersionRegistered { version, .. } => {
                self.emit(at, INFO, &format!("registered {version}"), &[]);
            }
            EventKind::EffectRecorded { version, effect_id } => {
                let text = format!(
                    "{version} caused side effect {effect_id} (recorded: compensated if {version} is rolled back)"
                );
                self.emit(at, INFO, &text, &[]);
            }
            EventKind::EffectCompensated { version, effect_id } => {
                let text =
                    format!("{version}'s side effect {effect_id} compensated (acknowledged)");
                let story = self.story(version);
                story.compensated.push(effect_id.clone());
                story.compensated_at = Some(at);
                self.emit(at, GOOD, &text, &[]);
            }
            EventKind::EffectsCommitted { version, effects } => {
                let text = format!(
                    "{effects} side effect(s) of {version} committed: a promotion replaced it"
                );
                self.emit(at, INFO, &text, &[]);
            }
            // Told by the decisions they go with, or routine.
            _ => {}
        }
    }

    fn analysis<'r>(
        &mut self,
        at: Timestamp,
        reports: impl Iterator<Item = &'r GateReport>,
        same_time: &[&Event],
    ) {
        for r in reports.filter(|r| !r.dry_run) {
            let just_tripped = same_time.iter().any(|e| {
                matches!(&e.kind, EventKind::GateTripped { gate, dry_run: false, scope }
                    if *gate == r.gate && *scope == r.scope)
            });
            let n = self.consecutive(&r.gate);
            // A scope's gate is named with its scope: `p95 in tenant=acme`.
            let name = gate_name(&r.gate, r.scope.as_ref());
            let alpha = r.alpha.or_else(|| alpha_of(self.config, &r.gate));
            match r.verdict {
                Verdict::Fail if just_tripped => {
                    self.failing.remove(&name);
                    self.story(&r.arm)
                        .first_trip
                        .get_or_insert((at, name.clone()));
                    let text = format!("gate {name} TRIPPED: {n} failing checks in a row");
                    let line = report_line_with(r, alpha);
                    self.emit(at, BAD, &text, &[line]);
                }
                Verdict::Fail if !r.tripped => {
                    let text = format!(
                        "gate {name} failing {}/{n}: {}",
                        r.consecutive_failures,
                        report_line_with(r, alpha)
                    );
                    self.failing.insert(name);
                    self.emit(at, BAD, &text, &[]);
                }
                Verdict::Pass if self.failing.remove(&name) => {
                    let line = report_line_with(r, alpha);
                    let text = format!("gate {name} passing again: {line}");
                    self.emit(at, INFO, &text, &[]);
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------------ the end

    fn summary(&mut self, status: &Status, inputs: usize, trace_command: &str) {
        self.flush_hold();
        self.mark_onsets(Timestamp::MAX);
        self.lines.push(String::new());
        self.lines.push("What happened".into());
        let stories = std::mem::take(&mut self.stories);
        for (version, s) in &stories {
            let onset = self
                .onsets
                .iter()
                .find(|o| o.version == *version)
                .map(|o| (self.start.saturating_add(o.offset_ms), o.metric.clone()));
            let mut parts = Vec::new();
            if let Some((t, metric)) = &onset {
                parts.push(format!("{metric} regressed at {}", self.clock(*t)));
            }
            if let Some((t, gate)) = &s.first_trip {
                parts.push(format!("{gate} tripped at {}", self.clock(*t)));
            }
            for (t, what) in &s.rungs {
                parts.push(format!("{what} at {}", self.clock(*t)));
            }
            if s.holds > 0 {
                let why = s.hold_reason.map(|r| snake(&r)).unwrap_or_default();
                parts.push(format!("held at {} checks ({why})", s.holds));
            }
            if let Some(p) = s.promoted_at {
                parts.push(format!("promoted at {}", self.clock(p)));
            }
            if let Some(c) = s.completed_at {
                parts.push(format!("completed at {}", self.clock(c)));
            }
            if let Some(r) = &s.rollback {
                let after = onset
                    .as_ref()
                    .filter(|(t, _)| *t <= r.at)
                    .map(|(t, _)| format!(", {} after the onset", duration(r.at - t)))
                    .unwrap_or_default();
                let who = if r.automated { "" } else { " by an operator" };
                parts.push(format!(
                    "rolled back{who} to {} at {} ({}){after}",
                    r.to,
                    self.clock(r.at),
                    snake(&r.reason)
                ));
                if let Some(d) = r.degradation_started_at {
                    parts.push(format!("degradation estimated from {}", self.clock(d)));
                }
            }
            if let Some(t) = s.compensated_at {
                let n = s.compensated.len();
                let plural = if n == 1 { "" } else { "s" };
                parts.push(format!(
                    "{n} side effect{plural} compensated by {} ({})",
                    self.clock(t),
                    s.compensated.join(", ")
                ));
            }
            for (i, part) in parts.iter().enumerate() {
                let head = if i == 0 { version.as_str() } else { "" };
                let arrow = if i == 0 { "" } else { "-> " };
                self.lines.push(format!("  {head:<4} {arrow}{part}"));
            }
        }
        match self.refused.len() {
            0 => {}
            1 => self.lines.push(format!("  refused: {}", self.refused[0])),
            n => self
                .lines
                .push(format!("  refused: {n} inputs, first {}", self.refused[0])),
        }
        let start = self.start;
        self.lines.push(format!(
            "  now: {}",
            crate::replay::status_line(status, |t| clock(t.saturating_sub(start)))
        ));
        self.lines.push(format!(
            "  ({inputs} inputs replayed; `{trace_command}` prints the full trace)"
        ));
    }
}

/// Events that follow from a decision and read best after it.
fn is_effect(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::CooldownStarted { .. } | EventKind::BreakerTripped { .. }
    )
}

/// Why a hold or an escalation, in words.
fn explain(reason: Reason) -> String {
    let why = match reason {
        Reason::CooldownActive => "a rollback is due, but the cooldown forbids it",
        Reason::BreakerOpen => "a rollback is due, but the breaker is open",
        Reason::Halted => "a rollback is due, but automation is halted",
        Reason::GateFailing => "the stage ended while a gate is failing",
        Reason::Inconclusive => "a gate could not reach a verdict",
        Reason::AutomatedRollback => "an automated rollback was issued",
        Reason::AckTimeout => "an action was not acknowledged in time",
        Reason::ActionFailed => "the caller could not execute an action",
        Reason::NoRollbackTarget => "a rollback is due but there is no validated version to go to",
        Reason::ApprovalTimeoutHold => "an approval timed out",
        Reason::Compensation => "a rollback undoes the side effects of the version it left",
        Reason::ScopedFailure => {
            "gates tripped in some scopes, below the impact rule: the rollout holds"
        }
        Reason::EnvironmentSuspected => {
            "the stable version fails the same gates too: the environment, not the candidate, looks degraded"
        }
        Reason::GraduatedResponse => {
            "gates tripped in some scopes: the ladder's rung for them applies, not a full rollback"
        }
        Reason::GradualRollback => {
            "gates failed a live canary: its weight is stepped down, a bake per step, before a full rollback"
        }
        _ => "",
    };
    if why.is_empty() {
        snake(&reason)
    } else {
        format!("{} ({why})", snake(&reason))
    }
}

/// The alpha of a gate whose kind is an anytime-valid test: its e-value's boundary is
/// ln(1/alpha) (the gate fails once the largest e-value so far reaches 1/alpha).
fn alpha_of(config: &PolicyConfig, gate: &str) -> Option<f64> {
    config
        .gates
        .iter()
        .find(|g| g.name == gate)
        .and_then(|g| match g.rule {
            Rule::ErrorAttribution { alpha, .. }
            | Rule::SequentialMean { alpha, .. }
            | Rule::RateSlo { alpha, .. }
            | Rule::SequentialQuantile { alpha, .. } => Some(alpha),
            _ => None,
        })
}

/// The e-value of a sequential test, with its boundary when the gate's alpha is known:
/// `ln e 6.22 (boundary ln(1/α) 4.61)`.
fn e_value_text(log_e_value: f64, alpha: Option<f64>) -> String {
    match alpha.filter(|a| *a > 0.0) {
        Some(a) => format!(
            "ln e {log_e_value:.2} (boundary ln(1/α) {:.2})",
            libm::log(1.0 / a)
        ),
        None => format!("ln e {log_e_value:.2}"),
    }
}

/// An effect with its confidence bounds: `1.38 [1.06, 1.90]`, `1.38 (≥ 1.06)`.
fn effect_text(
    effect: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    value: impl Fn(f64) -> String,
) -> String {
    let Some(e) = effect else {
        return "n/a".into();
    };
    match (lower, upper) {
        (Some(lo), Some(hi)) => format!("{} [{}, {}]", value(e), value(lo), value(hi)),
        (Some(lo), None) => format!("{} (≥ {})", value(e), value(lo)),
        (None, Some(hi)) => format!("{} (≤ {})", value(e), value(hi)),
        (None, None) => value(e),
    }
}

/// An impact rule's conditions, any one met: `it is of tier gold or 3 scopes trip`;
/// empty for `{}`.
fn impact_text(i: &rollguard::Impact) -> String {
    let mut when = Vec::new();
    if !i.tiers.is_empty() {
        when.push(format!("it is of tier {}", i.tiers.join(" or ")));
    }
    if let Some(k) = i.scopes_min {
        when.push(format!("{k} scopes trip"));
    }
    if let Some(x) = i.traffic_min {
        when.push(format!(
            "the tripped scopes carry {:.0}% of the samples",
            x * 100.0
        ));
    }
    when.join(" or ")
}

/// A gate as the narrative names it: `p95`, or in a scope `p95 in tenant=acme`.
fn gate_name(gate: &str, scope: Option<&rollguard::ScopeKey>) -> String {
    match scope {
        Some(k) => format!("{gate} in {}", k.label()),
        None => gate.to_string(),
    }
}

/// One gate's evidence, as its kind reports it: for window rules,
/// `p95 latency_ms 213.4 > max 158.9 (baseline 122.2)`. Without the gate's alpha (see
/// [`report_line_with`]).
#[cfg(test)]
fn report_line(r: &GateReport) -> String {
    report_line_with(r, None)
}

/// [`report_line`], with the e-value's boundary ln(1/alpha) for the sequential kinds.
fn report_line_with(r: &GateReport, alpha: Option<f64>) -> String {
    let stat = snake(&r.stat);
    let value = |x: f64| stat_value(r.stat, x);
    let Evidence::Bounds {
        observed,
        baseline,
        min,
        max,
    } = r.evidence
    else {
        return sequential_line(r, alpha);
    };
    let Some(observed) = observed else {
        return format!("{stat} {}: no data ({} samples)", r.metric, r.samples);
    };
    let bound = match (min, max) {
        (_, Some(max)) if observed > max => format!("> max {}", value(max)),
        (Some(min), _) if observed < min => format!("< min {}", value(min)),
        (Some(min), Some(max)) => format!("within {}..{}", value(min), value(max)),
        (None, Some(max)) => format!("<= max {}", value(max)),
        (Some(min), None) => format!(">= min {}", value(min)),
        (None, None) => String::new(),
    };
    let baseline = baseline
        .map(|b| format!(" (baseline {})", value(b)))
        .unwrap_or_default();
    format!("{stat} {} {} {bound}{baseline}", r.metric, value(observed))
}

/// A Kayenta score's evidence: `canary score 50.00 (fail at <= 75, pass at >= 95):
/// latency 50.00 x 50, errors 100.00 x 50`, or the critical member or no data.
fn score_line(r: &GateReport) -> String {
    let Evidence::Score {
        score,
        marginal,
        pass,
        reason,
        critical_metric,
        groups,
        ..
    } = &r.evidence
    else {
        return String::new();
    };
    let Some(score) = score else {
        return format!("{}: no member judged", r.gate);
    };
    let why = match reason {
        rollguard::ScoreReason::Critical => format!(
            "critical metric {} failed",
            critical_metric.as_deref().unwrap_or("?")
        ),
        rollguard::ScoreReason::NoData => "half the metrics or more without data".into(),
        _ => groups
            .iter()
            .map(|g| match g.score {
                Some(s) => format!("{} {s:.2} x {}", g.name, g.weight),
                None => format!("{} (no data) x {}", g.name, g.weight),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!(
        "{} score {score:.2} (fail at <= {marginal}, pass at >= {pass}): {why}",
        r.gate
    )
}

/// A sequential test's evidence: `errors ratio 1.38 (≥ 1.06), ln e 7.27 (boundary
/// ln(1/α) 4.61), p 0.0007 after 220 vs 1440 errors`.
fn sequential_line(r: &GateReport, alpha: Option<f64>) -> String {
    if let Evidence::Drift { .. } = r.evidence {
        return drift_line(r);
    }
    if let Evidence::Score { .. } = r.evidence {
        return score_line(r);
    }
    let Evidence::Sequential {
        effect,
        effect_lower,
        effect_upper,
        log_e_value,
        p_value,
        used,
        baseline_used,
        variance_inflation,
    } = r.evidence
    else {
        return match r.evidence {
            Evidence::Quantile { .. } => quantile_line(r, alpha),
            _ => change_line(r),
        };
    };
    let p = p_text(p_value);
    let e = e_value_text(log_e_value, alpha);
    let Some(baseline_used) = baseline_used else {
        // rate_slo: the judged arm's error rate against an objective.
        let rate = |x: f64| stat_value(Stat::Rate, x);
        let effect = effect_text(effect, effect_lower, effect_upper, rate);
        return format!("{} {effect}, {e}, p {p} after {used} requests", r.metric);
    };
    // error_attribution reads a rate and reports a ratio of error rates;
    // sequential_mean reads a mean and reports a difference, worse-positive.
    let (what, unit) = if r.stat == Stat::Rate {
        ("ratio", "errors")
    } else {
        ("worse by", "samples")
    };
    let effect = effect_text(effect, effect_lower, effect_upper, |x| format!("{x:.2}"));
    // sequential_mean: say when serial correlation widened the variance.
    let serial = match variance_inflation {
        Some(f) if f >= 1.05 => format!(", variance ×{f:.1} for correlated samples"),
        _ => String::new(),
    };
    format!(
        "{} {what} {effect}, {e}, p {p} after {used} vs {baseline_used} {unit}{serial}",
        r.metric
    )
}

/// A quantile test's evidence, each arm's quantile with its confidence bounds, then the
/// effect (their ratio, or difference for an absolute margin) with its bounds:
/// `p99 latency_ms 254.0 [192.0, 320.0] vs 158.0 [128.0, 192.0], effect 1.61 (≥ 1.00),
/// ln e 5.03, p 0.0065 after 200 vs 200 samples`.
fn quantile_line(r: &GateReport, alpha: Option<f64>) -> String {
    let Evidence::Quantile {
        judged_quantile,
        judged_lower,
        judged_upper,
        baseline_quantile,
        baseline_lower,
        baseline_upper,
        effect,
        effect_lower,
        effect_upper,
        log_e_value,
        p_value,
        used,
        baseline_used,
        ..
    } = r.evidence
    else {
        return change_line(r);
    };
    let value = |x: Option<f64>| x.map_or_else(|| "n/a".into(), |x| stat_value(r.stat, x));
    let arm = |q: Option<f64>, lo: Option<f64>, hi: Option<f64>| {
        let lo = lo.map_or_else(|| "…".into(), |x| stat_value(r.stat, x));
        let hi = hi.map_or_else(|| "…".into(), |x| stat_value(r.stat, x));
        format!("{} [{lo}, {hi}]", value(q))
    };
    format!(
        "{} {} {} vs {}, effect {}, {}, p {} after {used} vs {baseline_used} samples",
        snake(&r.stat),
        r.metric,
        arm(judged_quantile, judged_lower, judged_upper),
        arm(baseline_quantile, baseline_lower, baseline_upper),
        effect_text(effect, effect_lower, effect_upper, |x| format!("{x:.2}")),
        e_value_text(log_e_value, alpha),
        p_text(p_value)
    )
}

/// A change detector's evidence: `latency_ms cusum 7.38 > 5.00 (reference 100.0 ± 8.0)`.
fn change_line(r: &GateReport) -> String {
    let Evidence::Change {
        chart,
        statistic,
        threshold,
        reference_mean,
        reference_sd,
        ..
    } = r.evidence
    else {
        return rank_line(r);
    };
    let Some((mean, sd)) = reference_mean.zip(reference_sd) else {
        return format!("{} {}: learning its reference", r.metric, snake(&chart));
    };
    let side = if statistic > threshold { ">" } else { "<=" };
    format!(
        "{} {} {statistic:.2} {side} {threshold:.2} (reference {} ± {})",
        r.metric,
        snake(&chart),
        stat_value(r.stat, mean),
        stat_value(r.stat, sd)
    )
}

/// Kayenta's classification: `latency_ms HIGH: shift +20.00 (CI 18.00..22.00),
/// means x1.20, U 1560, p 1.2e-9 on 40 vs 40 samples`.
fn rank_line(r: &GateReport) -> String {
    let Evidence::Rank {
        classification,
        u_statistic,
        p_value,
        effect,
        effect_lower,
        effect_upper,
        mean_ratio,
        cles,
        used,
        baseline_used,
        outliers_removed,
        baseline_outliers_removed,
    } = r.evidence
    else {
        return format!("{}: {}", r.metric, snake(&r.verdict));
    };
    let class = snake(&classification).to_uppercase().replace('_', " ");
    let (Some(u), Some(p), Some(e), Some(lo), Some(hi), Some(ratio)) = (
        u_statistic,
        p_value,
        effect,
        effect_lower,
        effect_upper,
        mean_ratio,
    ) else {
        return format!(
            "{} {class} this interval ({used} vs {baseline_used} samples)",
            r.metric
        );
    };
    let v = |x: f64| stat_value(r.stat, x);
    let cles = cles.map_or(String::new(), |c| format!(", CLES {c:.2}"));
    let removed = if outliers_removed + baseline_outliers_removed > 0 {
        format!(" ({outliers_removed} + {baseline_outliers_removed} outliers removed)")
    } else {
        String::new()
    };
    format!(
        "{} {class}: shift {}{} (CI {}..{}), means x{ratio:.2}{cles}, U {u}, p {} on {used} vs {baseline_used} samples{removed}",
        r.metric,
        if e > 0.0 { "+" } else { "" },
        v(e),
        v(lo),
        v(hi),
        p_text(p)
    )
}

/// A drift gate's evidence: `tool psi 0.433 > 0.25, bin 3 at 36.7 % vs 10.0 % (60 vs
/// 60 samples)`.
fn drift_line(r: &GateReport) -> String {
    let Evidence::Drift {
        measure,
        divergence,
        threshold,
        used,
        baseline_used,
        bin,
        share,
        baseline_share,
    } = r.evidence
    else {
        return format!("{}: {}", r.metric, snake(&r.verdict));
    };
    let measure = snake(&measure);
    let Some(d) = divergence else {
        return format!(
            "{} {measure}: no data ({used} vs {baseline_used} samples)",
            r.metric
        );
    };
    let side = if d > threshold { ">" } else { "<=" };
    let moved = match (bin, share, baseline_share) {
        (Some(b), Some(s), Some(q)) => {
            format!(", bin {b} at {:.1} % vs {:.1} %", 100.0 * s, 100.0 * q)
        }
        _ => String::new(),
    };
    format!(
        "{} {measure} {d:.3} {side} {threshold}{moved} ({used} vs {baseline_used} samples)",
        r.metric
    )
}

/// A p-value in few digits: `0.0007`, `1.7e-17`.
fn p_text(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

fn gate_lines(config: &PolicyConfig, gates: &[GateReport]) -> Vec<String> {
    gates
        .iter()
        .map(|g| {
            let line = report_line_with(g, alpha_of(config, &g.gate));
            format!("{}: {line}", gate_name(&g.gate, g.scope.as_ref()))
        })
        .collect()
}

/// The policy in a few lines: strategy, timing, safety, gates.
fn policy_lines(config: &PolicyConfig) -> Vec<String> {
    let mut lines = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let bake = match &config.strategy {
        Strategy::Canary {
            steps,
            post_promotion_bake_ms,
        } => {
            for s in steps {
                stages.push(match s {
                    CanaryStep::Shadow { duration_ms } => {
                        format!("shadow {}", duration(*duration_ms))
                    }
                    CanaryStep::SetWeight {
                        weight,
                        duration_ms,
                    } => format!("{weight}% {}", duration(*duration_ms)),
                    CanaryStep::Approval {} => "approval".into(),
                });
            }
            *post_promotion_bake_ms
        }
        Strategy::BlueGreen {
            shadow_ms,
            preview_ms,
            post_promotion_bake_ms,
            ..
        } => {
            if *shadow_ms > 0 {
                stages.push(format!("shadow {}", duration(*shadow_ms)));
            }
            if *preview_ms > 0 {
                stages.push(format!("preview {}", duration(*preview_ms)));
            }
            *post_promotion_bake_ms
        }
    };
    stages.push("promote".into());
    if bake > 0 {
        stages.push(format!("bake {}", duration(bake)));
    }
    lines.push(format!("rollout: {}", stages.join(" -> ")));
    let trips: BTreeSet<u32> = config
        .gates
        .iter()
        .map(|g| g.persistence.consecutive)
        .collect();
    let trip = match trips.iter().collect::<Vec<_>>().as_slice() {
        [n] => format!("; a gate trips after {n} failing checks in a row"),
        _ => String::new(),
    };
    lines.push(format!(
        "checks:  gates every {}{trip}",
        duration(config.analysis.interval_ms)
    ));
    let s = &config.safety;
    lines.push(format!(
        "safety:  cooldown {} after an automated rollback; the breaker trips on automated rollback #{} within {}",
        duration(s.cooldown_ms),
        s.breaker.max_rollbacks,
        duration(s.breaker.window_ms)
    ));
    if let Some(g) = &s.gradual_rollback {
        let steps: Vec<String> = g.steps.iter().map(|w| format!("{w}%")).collect();
        lines.push(format!(
            "         gradual rollback: a failing live canary steps down through {}, {} per step, before the full rollback",
            steps.join(", "),
            duration(g.bake_ms)
        ));
    }
    if config.environment.check {
        lines.push(format!(
            "         environment check: a threshold or rate_slo gate that trips in shadow or canary holds (no rollback) while the stable version fails it too, by at least {} of the candidate's degradation",
            config.environment.ratio
        ));
    }
    let width = config.gates.iter().map(|g| g.name.len()).max().unwrap_or(0);
    for (i, g) in config.gates.iter().enumerate() {
        let head = if i == 0 { "gates:  " } else { "        " };
        let dry = if g.dry_run {
            "  (dry run: reported, never acted on)"
        } else {
            ""
        };
        lines.push(format!(
            "{head} {:<width$}  {}{dry}",
            g.name,
            rule_text(g.stat, &g.metric, &g.rule)
        ));
    }
    lines.extend(scopes_lines(config));
    lines
}

/// With `scopes` in the config: what a scope is, each tier's overrides, and the impact
/// rule, e.g. `scopes:  by tenant (at most 16); a tripped scope rolls back when it is
/// of tier gold or 3 scopes trip; below that the rollout holds and pages`.
fn scopes_lines(config: &PolicyConfig) -> Vec<String> {
    let Some(scopes) = &config.scopes else {
        return Vec::new();
    };
    let by: Vec<&str> = scopes
        .by
        .iter()
        .map(|l| match l {
            rollguard::ScopeLabel::Tenant => "tenant",
            rollguard::ScopeLabel::Tier => "tier",
            rollguard::ScopeLabel::Agent => "agent",
        })
        .collect();
    let impact = match (&scopes.impact, scopes.ladder.as_deref().unwrap_or_default()) {
        (Some(i), _) => format!(
            "a tripped scope rolls back when {}; below that the rollout holds and pages",
            impact_text(i)
        ),
        (None, []) => "any tripped scope rolls back".to_string(),
        (None, ladder) => {
            let rungs: Vec<String> = ladder
                .iter()
                .map(|r| {
                    let when = impact_text(&r.when);
                    let when = if when.is_empty() {
                        "any scope trips".to_string()
                    } else {
                        when
                    };
                    format!("{} when {when}", r.rung.as_str())
                })
                .collect();
            format!("ladder: {}", rungs.join(", then "))
        }
    };
    let mut lines = vec![format!(
        "scopes:  by {} (at most {}); {impact}",
        by.join(" x "),
        config.limits.scopes_max
    )];
    for (tier, t) in &scopes.tiers {
        for (gate, o) in &t.gates {
            let Some(g) = config.gates.iter().find(|g| g.name == *gate) else {
                continue;
            };
            if let Some(rule) = &o.rule {
                lines.push(format!(
                    "         tier {tier}: {gate}  {}",
                    rule_text(g.stat, &g.metric, rule)
                ));
            }
        }
    }
    lines
}

fn rule_text(stat: Stat, metric: &str, rule: &Rule) -> String {
    let v = |x: f64| stat_value(stat, x);
    let name = format!("{} {metric}", snake(&stat));
    let mut bounds = Vec::new();
    match *rule {
        Rule::Threshold { min, max } => {
            if let Some(min) = min {
                bounds.push(format!(">= {}", v(min)));
            }
            if let Some(max) = max {
                bounds.push(format!("<= {}", v(max)));
            }
        }
        Rule::VsBaseline {
            max_ratio,
            min_ratio,
            max_increase,
            max_decrease,
            baseline_min,
        } => {
            let base = match baseline_min {
                Some(floor) => format!("max(baseline, {})", v(floor)),
                None => "baseline".to_string(),
            };
            if let Some(r) = max_ratio {
                bounds.push(format!("<= {r} x {base}"));
            }
            if let Some(r) = min_ratio {
                bounds.push(format!(">= {r} x {base}"));
            }
            if let Some(d) = max_increase {
                bounds.push(format!("<= baseline + {}", v(d)));
            }
            if let Some(d) = max_decrease {
                bounds.push(format!(">= baseline - {}", v(d)));
            }
        }
        Rule::MannWhitney {
            worse,
            confidence,
            tolerance,
            effect_size,
            allowed_increase,
            allowed_decrease,
            outliers,
            ..
        } => {
            let up = allowed_increase.unwrap_or(effect_size.default_allowed());
            let down = allowed_decrease.unwrap_or(effect_size.default_allowed());
            let (what, ratio) = match (worse, effect_size) {
                (Direction::Higher, EffectSize::MeanRatio) => {
                    ("higher", format!(", means x{up} or more"))
                }
                (Direction::Lower, EffectSize::MeanRatio) => {
                    ("lower", format!(", means x{down} or less"))
                }
                (Direction::Higher, EffectSize::Cles) => ("higher", format!(", CLES >= {up}")),
                (Direction::Lower, EffectSize::Cles) => ("lower", format!(", CLES <= {down}")),
                (Direction::Either, _) => ("higher or lower", String::new()),
            };
            let trimmed = match outliers.removal() {
                Some(f) => format!(", outliers beyond {f} IQR removed"),
                None => String::new(),
            };
            return format!(
                "{metric} fails when classified {what} than baseline (Mann-Whitney, {}% CI beyond {tolerance} x the shift{ratio}{trimmed}; per interval, not anytime-valid)",
                confidence * 100.0
            );
        }
        Rule::KayentaScore {
            ref members,
            pass,
            marginal,
            ..
        } => {
            let critical = members.iter().filter(|m| m.critical).count();
            let critical = if critical > 0 {
                format!(", {critical} critical")
            } else {
                String::new()
            };
            return format!(
                "Kayenta score of {} member gates{critical}: fails at or below {marginal}, passes a stage from {pass}",
                members.len()
            );
        }
        Rule::ErrorAttribution { alpha, margin, .. } => {
            return format!(
                "{metric}: each error attributed to an arm by the traffic split; fails once the candidate's rate is shown above {} x the baseline's (anytime-valid, alpha {alpha})",
                1.0 + margin_value(margin)
            );
        }
        Rule::RateSlo {
            max_rate, alpha, ..
        } => {
            return format!(
                "{name}: fails once shown above {} (anytime-valid, alpha {alpha})",
                stat_value(Stat::Rate, max_rate)
            );
        }
        Rule::SequentialMean {
            alpha,
            worse,
            margin,
            autocorrelation,
            ..
        } => {
            let independent = if autocorrelation == Autocorrelation::Ignore {
                ", samples taken as independent"
            } else {
                ""
            };
            return format!(
                "{name}: fails once shown {} than the baseline's by more than {} (anytime-valid, alpha {alpha}{independent})",
                worse_text(worse),
                margin_text(stat, margin)
            );
        }
        Rule::SequentialQuantile {
            alpha,
            worse,
            margin,
            ..
        } => {
            return format!(
                "{name}: fails once shown {} than the baseline's by more than {} (anytime-valid, alpha {alpha})",
                worse_text(worse),
                margin_text(stat, margin)
            );
        }
        Rule::Cusum {
            worse,
            shift,
            arl0,
            threshold,
            reference_mean,
            reference_sd,
            autocorrelation,
            clip,
        } => {
            let samples = chart_samples_text(autocorrelation, clip);
            let alarm = match threshold {
                Some(h) => format!("alarm above {h}"),
                None => format!("alarm at one false alarm per {arl0} samples on average"),
            };
            return format!(
                "{metric}: cusum of {} samples against {}, tuned for {shift} sd{samples}; {alarm}",
                worse_text(worse),
                reference_text(stat, reference_mean, reference_sd)
            );
        }
        Rule::Ewma {
            worse,
            lambda,
            arl0,
            limit,
            reference_mean,
            reference_sd,
            autocorrelation,
            clip,
        } => {
            let samples = chart_samples_text(autocorrelation, clip);
            let alarm = match limit {
                Some(l) => format!("alarm beyond {l} x its deviation"),
                None => format!("alarm at one false alarm per {arl0} samples on average"),
            };
            return format!(
                "{metric}: EWMA (lambda {lambda}) of {} samples against {}{samples}; {alarm}",
                worse_text(worse),
                reference_text(stat, reference_mean, reference_sd)
            );
        }
        Rule::Drift {
            measure, threshold, ..
        } => {
            let (what, default) = match measure {
                Divergence::Js => ("Jensen-Shannon distance", 0.1),
                _ => ("population stability index", 0.25),
            };
            return format!(
                "{metric}: {what} against the baseline's distribution; fails above {}",
                threshold.unwrap_or(default)
            );
        }
        _ => bounds.push("(custom rule)".into()),
    }
    format!("{name} {}", bounds.join(" and "))
}

/// The relative margin's fraction (0 for an absolute one).
fn margin_value(margin: Margin) -> f64 {
    match margin {
        Margin::Relative(r) => r,
        Margin::Absolute(_) => 0.0,
    }
}

fn margin_text(stat: Stat, margin: Margin) -> String {
    match margin {
        Margin::Relative(r) => format!("{}%", r * 100.0),
        Margin::Absolute(a) => stat_value(stat, a),
    }
}

fn worse_text(worse: Worse) -> &'static str {
    match worse {
        Worse::Higher => "higher",
        Worse::Lower => "lower",
    }
}

/// A change detector's reference: given, or learned from the first samples.
/// How a chart takes its samples: clipped at ±c sd (the default 3), and taken as
/// independent when told to ignore serial correlation.
fn chart_samples_text(autocorrelation: Autocorrelation, clip: Option<f64>) -> String {
    let mut s = String::new();
    if let Some(c) = clip {
        s.push_str(&format!(", samples clipped at ±{c} sd"));
    }
    if autocorrelation == Autocorrelation::Ignore {
        s.push_str(", samples taken as independent");
    }
    s
}

fn reference_text(stat: Stat, mean: Option<f64>, sd: Option<f64>) -> String {
    match (mean, sd) {
        (Some(m), Some(s)) => format!(
            "its reference {} ± {}",
            stat_value(stat, m),
            stat_value(stat, s)
        ),
        _ => "a reference learned from its first samples of the phase".into(),
    }
}

/// The whole narrative of a replayed scenario: a header with the policy, one line per
/// moment, and a summary.
///
/// `command` is the command that tells it (`rollguard demo`, `rollguard explain FILE`),
/// `trace_command` the one that prints the whole trace instead.
pub(crate) fn narrate(
    scenario: &Scenario,
    trace: &[TraceEntry],
    status: &Status,
    command: &str,
    trace_command: &str,
) -> String {
    let mut n = Narrator::new(scenario);
    let title = scenario.description.lines().next().unwrap_or_default();
    n.lines.push(format!("{command}: {}", scenario.name));
    if !title.is_empty() {
        n.lines.push(title.to_string());
    }
    n.lines.push(String::new());
    n.lines.extend(policy_lines(&scenario.config));
    n.lines.push(String::new());
    n.lines.push(format!(
        "{:>8}  >> action (traffic changes)  !! trouble  << rollback  == hold  ~~ known onset",
        "time"
    ));
    for entry in trace {
        n.entry(entry);
    }
    n.summary(status, trace.len(), trace_command);
    let mut out = n.lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollguard::Chart;

    #[test]
    fn onsets_are_read_from_description_lines() {
        let d = "Intro.\n- onset v4 errors 7080000 (1:58:00): error rate up\n\
                 - onset v3 latency_ms 5640000 (1:34:00): p95 x1.8\n\
                 - onset broken\n- onset v5 m notanumber\nnot - onset v6 m 1\n";
        let got = onsets_from_description(d);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Onset {
                version: "v3".into(),
                metric: "latency_ms".into(),
                offset_ms: 5_640_000,
                note: "p95 x1.8".into(),
            }
        );
        assert_eq!(got[1].version, "v4");
    }

    #[test]
    fn the_statistical_scenario_tells_each_kinds_evidence() {
        // The dashboard's second scenario: v2 rolled back in its bake by a cusum gate, v3
        // from its canary by an error_attribution gate.
        let scenario = Scenario::from_json(crate::demo::STATISTICAL_JSON).unwrap();
        let story =
            crate::demo::story(&scenario, "rollguard demo", "rollguard demo --json").unwrap();
        let lines: Vec<&str> = story.lines().collect();
        let after = |head: &str| {
            let i = lines
                .iter()
                .position(|l| l.contains(head))
                .unwrap_or_else(|| panic!("no {head:?} in:\n{story}"));
            lines[i + 1].trim().to_string()
        };
        // The cusum statistic against its threshold, with the reference.
        let cusum = after("gate latency_cusum TRIPPED");
        assert!(
            cusum.starts_with("latency_ms cusum ")
                && cusum.contains(" > ")
                && cusum.contains("(reference 120.0 ± 12"),
            "{cusum}"
        );
        // The e-value against its boundary ln(1/alpha), alpha 0.01, and the effect's bound.
        let attribution = after("gate errors_attributed TRIPPED");
        assert!(
            attribution.starts_with("errors ratio ")
                && attribution.contains(" (≥ ")
                && attribution.contains("(boundary ln(1/α) 4.61)"),
            "{attribution}"
        );
    }

    #[test]
    fn timeouts_halts_retries_and_aborts_are_told() {
        let config = r#"{
          "format_version": 1,
          "versions": [{"id": "v1", "digest": "a", "validated": true},
                       {"id": "v2", "digest": "b"}],
          "stable": "v1",
          "metrics": [{"name": "m", "kind": "value"}],
          "gates": [{"name": "g", "metric": "m", "stat": "mean",
                     "rule": {"kind": "threshold", "max": 1}}],
          "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 10, "duration_ms": 600000}]}
        }"#;
        let inputs = r#"[
          {"kind": "start_rollout", "at": 0, "version": "v2"},
          {"kind": "tick", "at": 700000},
          {"kind": "resume", "at": 710000},
          {"kind": "ack", "at": 711000, "action_id": 2},
          {"kind": "ack", "at": 712000, "action_id": 2},
          {"kind": "abort", "at": 720000},
          {"kind": "ack", "at": 721000, "action_id": 3}
        ]"#;
        let text = format!(
            r#"{{"format_version": 1, "name": "t", "config": {config}, "inputs": {inputs}}}"#
        );
        let scenario = Scenario::from_json(&text).unwrap();
        let mut trace = Vec::new();
        let policy =
            rollguard::replay_with(scenario.config.clone(), 0, scenario.inputs.clone(), |e| {
                trace.push(e)
            })
            .unwrap();
        let story = narrate(
            &scenario,
            &trace,
            &policy.status(),
            "rollguard explain",
            "rollguard replay",
        );
        for line in [
            "0:00:00  >> rollout of v2 starts: route 10% of traffic to v2",
            "0:10:00  !! action 1 was not acknowledged in time",
            "0:10:00  !! automation HALTED (ack_timeout)",
            "0:10:00  !! PAGE on-call: ack_timeout (an action was not acknowledged in time)",
            "0:11:50  >> route 10% of traffic to v2 (operator_retry)",
            "0:11:52  xx REFUSED ack of action 2: unknown_action",
            "0:12:00  << ROLLBACK v2 -> v1 (operator: operator_abort; target stable)",
            "0:12:01  .. rollback done: v1 serves all traffic, v2 is out",
            "  v2   rolled back by an operator to v1 at 0:12:00 (operator_abort)",
        ] {
            assert!(story.contains(line), "missing {line:?} in:\n{story}");
        }
    }

    #[test]
    fn an_environment_hold_is_told_with_both_versions() {
        let config = r#"{
          "format_version": 1,
          "versions": [{"id": "v1", "digest": "a", "validated": true},
                       {"id": "v2", "digest": "b"}],
          "stable": "v1",
          "metrics": [{"name": "m", "kind": "value", "window_ms": 10000, "buckets": 10}],
          "gates": [{"name": "g", "metric": "m", "stat": "mean",
                     "rule": {"kind": "threshold", "max": 300},
                     "persistence": {"consecutive": 1}}],
          "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 10, "duration_ms": 600000}]},
          "analysis": {"interval_ms": 10000},
          "environment": {"check": true}
        }"#;
        let inputs = r#"[
          {"kind": "start_rollout", "at": 0, "version": "v2"},
          {"kind": "ack", "at": 0, "action_id": 1},
          {"kind": "observe", "at": 2000, "arm": "v1", "metric": "m", "value": 490},
          {"kind": "observe", "at": 2000, "arm": "v2", "metric": "m", "value": 500},
          {"kind": "tick", "at": 10000},
          {"kind": "observe", "at": 12000, "arm": "v1", "metric": "m", "value": 480},
          {"kind": "observe", "at": 12000, "arm": "v2", "metric": "m", "value": 500},
          {"kind": "tick", "at": 20000}
        ]"#;
        let text = format!(
            r#"{{"format_version": 1, "name": "t", "config": {config}, "inputs": {inputs}}}"#
        );
        let scenario = Scenario::from_json(&text).unwrap();
        let mut trace = Vec::new();
        let policy =
            rollguard::replay_with(scenario.config.clone(), 0, scenario.inputs.clone(), |e| {
                trace.push(e)
            })
            .unwrap();
        let story = narrate(
            &scenario,
            &trace,
            &policy.status(),
            "rollguard explain",
            "rollguard replay",
        );
        for line in [
            "         environment check: a threshold or rate_slo gate that trips in shadow or canary holds",
            "== HOLD, no rollback: environment_suspected (the stable version fails the same gates too",
            "g: mean m 500.0 > max 300.0 (baseline 490.0)",
            "PAGE on-call: environment_suspected",
            "the stable version v1 fails the same gates as v2, by at least 0.8 of its \
             degradation: g: mean v2 500 (1 samples), v1 490 (1 samples), both above max 300",
        ] {
            assert!(story.contains(line), "missing {line:?} in:\n{story}");
        }
        assert!(!story.contains("ROLLBACK"), "{story}");
    }

    #[test]
    fn side_effects_and_their_compensation_are_told() {
        let config = r#"{
          "format_version": 1,
          "versions": [{"id": "v1", "digest": "a", "validated": true},
                       {"id": "v2", "digest": "b"}],
          "stable": "v1",
          "metrics": [{"name": "m", "kind": "value"}],
          "strategy": {"kind": "canary", "steps": [
            {"kind": "set_weight", "weight": 10, "duration_ms": 600000}]}
        }"#;
        let inputs = r#"[
          {"kind": "start_rollout", "at": 0, "version": "v2"},
          {"kind": "ack", "at": 0, "action_id": 1},
          {"kind": "record_effect", "at": 1000, "version": "v2",
           "effect": {"id": "email-1", "undo": {"op": "send_correction"}}},
          {"kind": "record_effect", "at": 2000, "version": "v2",
           "effect": {"id": "refund-2", "undo": {"op": "charge", "amount": 5}}},
          {"kind": "revert_now", "at": 3000},
          {"kind": "ack", "at": 4000, "action_id": 2},
          {"kind": "ack", "at": 5000, "action_id": 3},
          {"kind": "ack", "at": 6000, "action_id": 4}
        ]"#;
        let text = format!(
            r#"{{"format_version": 1, "name": "t", "config": {config}, "inputs": {inputs}}}"#
        );
        let scenario = Scenario::from_json(&text).unwrap();
        let mut trace = Vec::new();
        let policy =
            rollguard::replay_with(scenario.config.clone(), 0, scenario.inputs.clone(), |e| {
                trace.push(e)
            })
            .unwrap();
        let story = narrate(
            &scenario,
            &trace,
            &policy.status(),
            "rollguard explain",
            "rollguard replay",
        );
        let first = story
            .find("COMPENSATE v2's side effect refund-2")
            .expect(&story);
        let second = story
            .find("COMPENSATE v2's side effect email-1")
            .expect(&story);
        assert!(first < second, "newest first:\n{story}");
        for line in [
            "v2 caused side effect email-1 (recorded: compensated if v2 is rolled back)",
            "0:00:04  >> COMPENSATE v2's side effect refund-2: run its undo (newest first)",
            r#"undo: {"amount":5,"op":"charge"}"#,
            "0:00:05  ok v2's side effect refund-2 compensated (acknowledged)",
            "0:00:06  ok v2's side effect email-1 compensated (acknowledged)",
            "-> 2 side effects compensated by 0:00:06 (refund-2, email-1)",
        ] {
            assert!(story.contains(line), "missing {line:?} in:\n{story}");
        }
    }

    #[test]
    fn report_lines_compare_observed_with_the_broken_bound() {
        let r = GateReport {
            gate: "err".into(),
            metric: "errors".into(),
            stat: Stat::Rate,
            verdict: Verdict::Fail,
            arm: "v4".into(),
            scope: None,
            evidence: Evidence::Bounds {
                observed: Some(0.026),
                baseline: Some(0.002),
                min: None,
                max: Some(0.007),
            },
            samples: 3000,
            baseline_samples: Some(9000),
            window_start: 0,
            window_end: 1,
            consecutive_failures: 1,
            tripped: false,
            dry_run: false,
            alpha: None,
        };
        assert_eq!(
            report_line(&r),
            "rate errors 2.60% > max 0.70% (baseline 0.20%)"
        );
        let q = GateReport {
            stat: Stat::Mean,
            metric: "quality".into(),
            evidence: Evidence::Bounds {
                observed: Some(0.75),
                baseline: None,
                min: Some(0.8),
                max: None,
            },
            ..r
        };
        assert_eq!(report_line(&q), "mean quality 0.750 < min 0.800");
        let e = GateReport {
            stat: Stat::Rate,
            metric: "errors".into(),
            evidence: Evidence::Sequential {
                effect: Some(1.375),
                effect_lower: Some(1.0584),
                effect_upper: None,
                log_e_value: 7.27,
                p_value: 0.000_697,
                used: 220,
                baseline_used: Some(1440),
                variance_inflation: None,
            },
            ..q
        };
        assert_eq!(
            report_line(&e),
            "errors ratio 1.38 (≥ 1.06), ln e 7.27, p 7.0e-4 after 220 vs 1440 errors"
        );
        // With the gate's alpha, the e-value's boundary ln(1/alpha).
        assert_eq!(
            report_line_with(&e, Some(0.01)),
            "errors ratio 1.38 (≥ 1.06), ln e 7.27 (boundary ln(1/α) 4.61), p 7.0e-4 after 220 vs 1440 errors"
        );
        let m = GateReport {
            stat: Stat::Mean,
            metric: "latency_ms".into(),
            evidence: Evidence::Sequential {
                effect: Some(12.0),
                effect_lower: Some(1.643),
                effect_upper: None,
                log_e_value: 6.15,
                p_value: 0.00214,
                used: 15,
                baseline_used: Some(15),
                variance_inflation: Some(1.01),
            },
            ..e
        };
        assert_eq!(
            report_line(&m),
            "latency_ms worse by 12.00 (≥ 1.64), ln e 6.15, p 0.0021 after 15 vs 15 samples"
        );
        // A two-sided confidence sequence gives both bounds.
        let two = GateReport {
            evidence: Evidence::Sequential {
                effect: Some(12.0),
                effect_lower: Some(1.643),
                effect_upper: Some(22.5),
                log_e_value: 6.15,
                p_value: 0.00214,
                used: 15,
                baseline_used: Some(15),
                variance_inflation: None,
            },
            ..m.clone()
        };
        assert!(
            report_line(&two).starts_with("latency_ms worse by 12.00 [1.64, 22.50], ln e 6.15"),
            "{}",
            report_line(&two)
        );
        let mut serial = m.clone();
        if let Evidence::Sequential {
            variance_inflation, ..
        } = &mut serial.evidence
        {
            *variance_inflation = Some(2.96);
        }
        assert!(
            report_line(&serial).ends_with(" samples, variance ×3.0 for correlated samples"),
            "{}",
            report_line(&serial)
        );
        let c = GateReport {
            evidence: Evidence::Change {
                chart: Chart::Cusum,
                statistic: 7.375,
                threshold: 5.0,
                reference_mean: Some(100.0),
                reference_sd: Some(8.0),
                used: 34,
            },
            ..m
        };
        assert!(report_line(&c).starts_with("latency_ms cusum 7.38 > 5.00 (reference "));
        let w = GateReport {
            evidence: Evidence::Change {
                chart: Chart::Ewma,
                statistic: 0.25,
                threshold: 0.61,
                reference_mean: None,
                reference_sd: None,
                used: 0,
            },
            ..c.clone()
        };
        assert_eq!(report_line(&w), "latency_ms ewma: learning its reference");
        let slo = GateReport {
            stat: Stat::Rate,
            metric: "errors".into(),
            evidence: Evidence::Sequential {
                effect: Some(0.003),
                effect_lower: Some(0.0015),
                effect_upper: None,
                log_e_value: 5.0,
                p_value: 0.0067,
                used: 20_000,
                baseline_used: None,
                variance_inflation: None,
            },
            ..c
        };
        assert!(report_line(&slo).ends_with(", ln e 5.00, p 0.0067 after 20000 requests"));
        let q = GateReport {
            stat: Stat::P99,
            metric: "latency_ms".into(),
            evidence: Evidence::Quantile {
                quantile: 0.99,
                judged_quantile: Some(254.0),
                judged_lower: Some(192.0),
                judged_upper: None,
                baseline_quantile: Some(158.0),
                baseline_lower: Some(128.0),
                baseline_upper: Some(192.0),
                effect: Some(1.61),
                effect_lower: Some(1.0),
                effect_upper: None,
                log_e_value: 5.03,
                p_value: 0.0065,
                used: 200,
                baseline_used: 200,
            },
            ..slo.clone()
        };
        assert_eq!(
            report_line(&q),
            "p99 latency_ms 254.0 [192.0, …] vs 158.0 [128.0, 192.0], effect 1.61 (≥ 1.00), ln e 5.03, p 0.0065 after 200 vs 200 samples"
        );
        let rank = GateReport {
            stat: Stat::Mean,
            metric: "latency_ms".into(),
            evidence: Evidence::Rank {
                classification: rollguard::Classification::High,
                u_statistic: Some(1560.0),
                p_value: Some(1.2e-9),
                effect: Some(20.0),
                effect_lower: Some(18.0),
                effect_upper: Some(22.0),
                mean_ratio: Some(1.2),
                cles: Some(0.975),
                used: 40,
                baseline_used: 40,
                outliers_removed: 2,
                baseline_outliers_removed: 0,
            },
            ..slo.clone()
        };
        assert_eq!(
            report_line(&rank),
            "latency_ms HIGH: shift +20.00 (CI 18.00..22.00), means x1.20, CLES 0.97, U 1560, p 1.2e-9 on 40 vs 40 samples (2 + 0 outliers removed)"
        );
        let none = GateReport {
            evidence: Evidence::Rank {
                classification: rollguard::Classification::NoData,
                u_statistic: None,
                p_value: None,
                effect: None,
                effect_lower: None,
                effect_upper: None,
                mean_ratio: None,
                cles: None,
                used: 0,
                baseline_used: 12,
                outliers_removed: 0,
                baseline_outliers_removed: 0,
            },
            ..rank
        };
        assert_eq!(
            report_line(&none),
            "latency_ms NO DATA this interval (0 vs 12 samples)"
        );
        let group = |name: &str, score: Option<f64>, weight: f64| rollguard::ScoreGroup {
            name: name.into(),
            score,
            weight,
            pass: 1,
            high: 0,
            low: 0,
            no_data: 0,
            no_data_fail: 0,
        };
        let score = GateReport {
            gate: "canary_score".into(),
            evidence: Evidence::Score {
                score: Some(90.0),
                marginal: 75.0,
                pass: 95.0,
                reason: rollguard::ScoreReason::Score,
                critical_metric: None,
                groups: vec![
                    group("latency", Some(100.0), 80.0),
                    group("system", Some(50.0), 20.0),
                ],
                metrics: Vec::new(),
            },
            ..none.clone()
        };
        assert_eq!(
            report_line(&score),
            "canary_score score 90.00 (fail at <= 75, pass at >= 95): latency 100.00 x 80, system 50.00 x 20"
        );
        let critical = GateReport {
            evidence: Evidence::Score {
                score: Some(0.0),
                marginal: 75.0,
                pass: 95.0,
                reason: rollguard::ScoreReason::Critical,
                critical_metric: Some("errors".into()),
                groups: Vec::new(),
                metrics: Vec::new(),
            },
            ..score
        };
        assert_eq!(
            report_line(&critical),
            "canary_score score 0.00 (fail at <= 75, pass at >= 95): critical metric errors failed"
        );
        let drift = GateReport {
            metric: "tool".into(),
            evidence: Evidence::Drift {
                measure: rollguard::Divergence::Psi,
                divergence: Some(0.4329),
                threshold: 0.25,
                used: 60,
                baseline_used: 60,
                bin: Some(3),
                share: Some(0.3667),
                baseline_share: Some(0.1),
            },
            ..slo
        };
        assert_eq!(
            report_line(&drift),
            "tool psi 0.433 > 0.25, bin 3 at 36.7 % vs 10.0 % (60 vs 60 samples)"
        );
    }
}
