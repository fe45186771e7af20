//! Replays: a scenario file, or a samples file against a policy file, through
//! [`rollguard::replay_with`], with the trace streamed out as JSON lines.
//!
//! Recorded metrics carry no acknowledgements, so in samples mode an [`AutoAck`]ing
//! feed plays the caller that executes every action instantly: after each input it
//! queues an `ack` for every action the step issued, at the step's time, and feeds
//! those before the next line of the file. The acks are inputs like any other and
//! appear in the trace.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rollguard::{EventKind, Input, Policy, PolicyConfig, Status, Timestamp, TraceEntry};

use crate::error::CliError;
use crate::samples::{Format, SampleReader};
use crate::scenario::{self, Sink};
use crate::text::{action_kind, clock, input_summary};

/// Show a progress bar for files of at least this many bytes.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;
/// Refused inputs listed by name in the summary; the rest are only counted.
const SUMMARY_REFUSED_MAX: usize = 10;

/// What to print, and whether refused inputs fail the replay.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplayOptions {
    /// Every trace entry, not only those with decisions, events or an error.
    pub(crate) all: bool,
    /// A human summary on stderr at the end.
    pub(crate) summary: bool,
    /// Any refused input fails the replay (`inputs_refused`, exit code 2) once the
    /// whole trace is printed; otherwise a refusal is only noted on stderr.
    pub(crate) strict: bool,
}

/// Where an input came from, to name it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Input `n` (0-based) of a scenario.
    Scenario(u32),
    /// Line `n` of a samples file.
    Line(u64),
    /// An acknowledgement added by `--auto-ack`.
    AutoAck,
}

/// Reads a file (or stdin for `-`) of at most `max` bytes as UTF-8; a longer one is
/// `input_too_long`, found without reading more than `max + 1` bytes of it.
pub(crate) fn read_text(path: &Path, max: u64) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let limit = max.saturating_add(1);
    let result = if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    result.map_err(|e| CliError::io(path, &e))?;
    if bytes.len() as u64 > max {
        return Err(crate::samples::too_long(path.display().to_string(), max));
    }
    String::from_utf8(bytes).map_err(|e| {
        CliError::bad_input(
            "invalid_utf8",
            path.display().to_string(),
            format!(
                "not valid UTF-8 after byte {}",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A file (or stdin for `-`) to read, and its size (0 for stdin).
pub(crate) fn open(path: &Path) -> Result<(Box<dyn BufRead>, u64), CliError> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin().lock()), 0));
    }
    let file = std::fs::File::open(path).map_err(|e| CliError::io(path, &e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((Box::new(BufReader::with_capacity(1 << 16, file)), size))
}

/// The earliest time an input carries: a batch's first sample's, which a policy
/// created to replay it must not start after (`Input::at` gives the last one's).
pub(crate) fn earliest_at(input: &Input) -> Option<Timestamp> {
    match input {
        Input::ObserveBatch { samples } => samples.first().map(|s| s.at),
        _ => input.at(),
    }
}

/// The acknowledgements an instantly executing caller sends after `entry`: one for
/// every action its step issued that is still waiting (not already timed out within
/// the same step), at the step's time, which is the policy's time after it.
pub(crate) fn acks_for(entry: &TraceEntry) -> Vec<Input> {
    let Some(step) = &entry.step else {
        return Vec::new();
    };
    let timed_out = |id: u64| {
        step.events
            .iter()
            .any(|e| matches!(e.kind, EventKind::AckTimedOut { action_id } if action_id == id))
    };
    step.actions()
        .filter_map(|d| d.action_id)
        .filter(|id| !timed_out(*id))
        .map(|action_id| Input::Ack {
            at: step.at,
            action_id,
        })
        .collect()
}

/// Shared between the feed (which `replay_with` pulls inputs from) and the callback
/// (which sees each trace entry): they take turns, never overlapping.
struct FeedState {
    acks: VecDeque<Input>,
    /// Where the input being replayed came from.
    origin: Origin,
    /// The source's error that ended the feed early.
    failure: Option<CliError>,
    /// Set when output failed: stop feeding.
    stop: bool,
}

/// The inputs of a replay: queued acknowledgements first, then the source's.
struct Feed<'a, I> {
    source: I,
    state: &'a RefCell<FeedState>,
}

impl<I> Iterator for Feed<'_, I>
where
    I: Iterator<Item = Result<(Origin, Input), CliError>>,
{
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        let mut state = self.state.borrow_mut();
        if state.stop {
            return None;
        }
        if let Some(ack) = state.acks.pop_front() {
            state.origin = Origin::AutoAck;
            return Some(ack);
        }
        match self.source.next()? {
            Ok((origin, input)) => {
                state.origin = origin;
                Some(input)
            }
            Err(e) => {
                state.failure = Some(e);
                None
            }
        }
    }
}

/// Replays `source` against a new policy, handing every trace entry to `sink`.
///
/// # Errors
/// A config error (its path under `config_path`), or the source's first error.
pub(crate) fn drive<I>(
    config: PolicyConfig,
    start: Timestamp,
    source: I,
    auto_ack: bool,
    config_path: &str,
    sink: &mut dyn FnMut(&TraceEntry, Origin) -> bool,
) -> Result<Policy, CliError>
where
    I: Iterator<Item = Result<(Origin, Input), CliError>>,
{
    let state = RefCell::new(FeedState {
        acks: VecDeque::new(),
        origin: Origin::AutoAck,
        failure: None,
        stop: false,
    });
    let feed = Feed {
        source,
        state: &state,
    };
    let policy = rollguard::replay_with(config, start, feed, |entry| {
        let origin = {
            let mut s = state.borrow_mut();
            if auto_ack {
                s.acks.extend(acks_for(&entry));
            }
            s.origin
        };
        if !sink(&entry, origin) {
            state.borrow_mut().stop = true;
        }
    })
    .map_err(|e| CliError::core_within(&e, config_path))?;
    match state.into_inner().failure {
        Some(e) => Err(e),
        None => Ok(policy),
    }
}

/// Writes trace entries as JSON lines and keeps the numbers for the summary.
pub(crate) struct TraceWriter<W: Write> {
    out: W,
    options: ReplayOptions,
    error: Option<std::io::Error>,
    summary: Summary,
}

impl<W: Write> TraceWriter<W> {
    /// A writer to `out`; `start` is the replay's start, for the summary's clocks.
    pub(crate) fn new(out: W, options: ReplayOptions, start: Timestamp) -> Self {
        Self {
            out,
            options,
            error: None,
            summary: Summary::new(start),
        }
    }

    /// Records and, if it is selected, prints one entry. Returns false once output
    /// has failed (the replay should stop).
    pub(crate) fn accept(&mut self, entry: &TraceEntry, origin: Origin) -> bool {
        self.summary.record(entry, origin);
        if self.error.is_some() {
            return false;
        }
        let selected = self.options.all
            || entry.error.is_some()
            || entry.step.as_ref().is_some_and(|s| !s.is_empty());
        if selected {
            let written = serde_json::to_writer(&mut self.out, entry)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            if let Err(e) = written {
                self.error = Some(e);
                return false;
            }
        }
        true
    }

    /// Flushes the output. A closed pipe (`rollguard replay … | head`) is not an error.
    ///
    /// # Errors
    /// `io` for any other write failure.
    pub(crate) fn finish(mut self) -> Result<Summary, CliError> {
        let flushed = match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        };
        match flushed {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(CliError::io(Path::new("stdout"), &e))
            }
            _ => Ok(self.summary),
        }
    }
}

/// The numbers behind `--summary`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    start: Timestamp,
    inputs: u64,
    auto_acks: u64,
    refused: u64,
    /// The first few refused inputs, described.
    refused_detail: Vec<String>,
    /// Decisions by action kind (a BTreeMap so the order is stable).
    decisions: BTreeMap<String, u64>,
    last_at: Option<Timestamp>,
}

impl Summary {
    fn new(start: Timestamp) -> Self {
        Self {
            start,
            ..Self::default()
        }
    }

    fn record(&mut self, entry: &TraceEntry, origin: Origin) {
        self.inputs += 1;
        if origin == Origin::AutoAck {
            self.auto_acks += 1;
        }
        if let Some(at) = entry.input.at() {
            self.last_at = Some(self.last_at.map_or(at, |l| l.max(at)));
        }
        if let Some(step) = &entry.step {
            for d in &step.decisions {
                *self.decisions.entry(action_kind(&d.action)).or_default() += 1;
            }
        }
        if let Some(e) = &entry.error {
            self.refused += 1;
            if self.refused_detail.len() < SUMMARY_REFUSED_MAX {
                let place = match origin {
                    Origin::Scenario(i) => format!("input {i}"),
                    Origin::Line(n) => format!("line {n}"),
                    Origin::AutoAck => "auto-ack".to_string(),
                };
                let when = entry
                    .input
                    .at()
                    .map(|t| format!(" at {}", self.clock(t)))
                    .unwrap_or_default();
                let path = if e.path.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", e.path)
                };
                self.refused_detail.push(format!(
                    "{place} ({}{when}): {}{path}: {}",
                    input_summary(&entry.input),
                    e.code,
                    e.message
                ));
            }
        }
    }

    /// `3 of 120 inputs refused, the first: line 2 (…): code: message`; `None` when
    /// nothing was refused.
    fn refusals(&self) -> Option<String> {
        if self.refused == 0 {
            return None;
        }
        let mut text = format!("{} of {} inputs refused", self.refused, self.inputs);
        if let Some(first) = self.refused_detail.first() {
            text.push_str(&format!(", the first: {first}"));
        }
        Some(text)
    }

    fn clock(&self, at: Timestamp) -> String {
        if at >= self.start {
            clock(at - self.start)
        } else {
            format!("-{}", clock(self.start - at))
        }
    }

    /// The summary text, with the policy's final status.
    pub(crate) fn render(&self, status: &Status) -> String {
        let mut out = String::new();
        let span = match self.last_at {
            Some(last) => format!(
                ", spanning {} from the start at {} ms",
                self.clock(last),
                self.start
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "summary: {} inputs, {} refused{span}\n",
            self.inputs, self.refused
        ));
        if self.auto_acks > 0 {
            out.push_str(&format!("  auto-acks: {}\n", self.auto_acks));
        }
        for r in &self.refused_detail {
            out.push_str(&format!("  refused: {r}\n"));
        }
        if self.refused > self.refused_detail.len() as u64 {
            out.push_str(&format!(
                "  … and {} more refused\n",
                self.refused - self.refused_detail.len() as u64
            ));
        }
        let decisions: Vec<String> = self
            .decisions
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "  decisions: {}\n",
            if decisions.is_empty() {
                "none".to_string()
            } else {
                decisions.join(", ")
            }
        ));
        out.push_str(&format!(
            "  final: {}\n",
            status_line(status, |t| self.clock(t))
        ));
        out
    }
}

/// One line of a policy's status: aliases, rollout, safety state.
pub(crate) fn status_line(status: &Status, clock: impl Fn(Timestamp) -> String) -> String {
    let a = &status.aliases;
    let mut parts = vec![
        format!("stable {}", a.stable),
        format!("golden {}", a.golden),
    ];
    if let Some(p) = &a.previous {
        parts.push(format!("previous {p}"));
    }
    match &a.candidate {
        Some(c) => parts.push(format!("rolling out {c} at {}%", status.weight)),
        None => parts.push("no rollout".into()),
    }
    if let Some(id) = status.pending_action {
        parts.push(format!("action {id} awaiting ack"));
    }
    if let Some(p) = status.paused {
        parts.push(format!("paused ({})", crate::text::snake(&p)));
    }
    if let Some(h) = status.halted {
        parts.push(format!("halted ({})", crate::text::snake(&h)));
    }
    parts.push(if status.breaker_open {
        "breaker OPEN".into()
    } else {
        "breaker closed".into()
    });
    if let Some(c) = status.cooldown_until {
        parts.push(format!("cooldown until {}", clock(c)));
    }
    if !status.tripped_gates.is_empty() {
        parts.push(format!("tripped: {}", status.tripped_gates.join(", ")));
    }
    match (status.effects_held, status.compensations_waiting) {
        (0, _) => {}
        (1, 0) => parts.push("1 effect held".into()),
        (n, 0) => parts.push(format!("{n} effects held")),
        (n, w) => parts.push(format!("{n} effects held, {w} to compensate")),
    }
    parts.join(", ")
}

/// A progress bar on stderr, only when stderr is a terminal and the work is long.
pub(crate) fn progress_bar(len: u64, min: u64, template: &str) -> Option<ProgressBar> {
    if len < min || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

pub(crate) fn finish_bar(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Writes a streamed scenario's trace, and moves the progress bar along.
struct ScenarioSink<'a, W: Write> {
    writer: TraceWriter<W>,
    bar: Option<&'a ProgressBar>,
    entries: u64,
}

impl<W: Write> Sink for ScenarioSink<'_, W> {
    fn start(&mut self, start: Timestamp) {
        self.writer.summary.start = start;
    }

    fn entry(&mut self, entry: &TraceEntry, origin: Origin, read: u64) -> bool {
        self.entries += 1;
        if let Some(b) = self.bar.filter(|_| self.entries.is_multiple_of(1024)) {
            b.set_position(read);
        }
        self.writer.accept(entry, origin)
    }
}

/// `rollguard replay SCENARIO.json`: the scenario file is streamed (see
/// [`crate::scenario`]), each input at most `max_input` bytes.
pub(crate) fn replay_scenario_file(
    path: &Path,
    max_input: u64,
    auto_ack: bool,
    options: ReplayOptions,
) -> Result<(), CliError> {
    let (reader, size) = open(path)?;
    replay_scenario(reader, path, size, max_input, auto_ack, options)
}

/// Replays the scenario read from `reader` (`size` bytes, for progress; `source` names
/// it in I/O errors) and prints its trace.
pub(crate) fn replay_scenario(
    reader: impl Read,
    source: &Path,
    size: u64,
    max_input: u64,
    auto_ack: bool,
    options: ReplayOptions,
) -> Result<(), CliError> {
    let bar = progress_bar(
        size,
        PROGRESS_MIN_BYTES,
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes}",
    );
    let stdout = std::io::stdout();
    let mut sink = ScenarioSink {
        writer: TraceWriter::new(stdout.lock(), options, 0),
        bar: bar.as_ref(),
        entries: 0,
    };
    let result = scenario::replay(reader, source, max_input, auto_ack, &mut sink);
    // Whatever was replayed before an error is already printed; flush it, then fail.
    let summary = sink.writer.finish();
    finish_bar(bar);
    let policy = result?;
    conclude(&summary?, &policy, options)
}

/// `rollguard replay --policy POLICY.json --samples FILE`.
pub(crate) fn replay_samples(
    policy_path: &Path,
    samples_path: &Path,
    format: Option<Format>,
    start: Option<Timestamp>,
    max_input: u64,
    auto_ack: bool,
    options: ReplayOptions,
) -> Result<(), CliError> {
    let config = PolicyConfig::from_json(&read_text(policy_path, max_input)?)?;
    let format = format.unwrap_or_else(|| Format::for_path(samples_path));
    let (reader, size) = open(samples_path)?;
    let mut reader = SampleReader::new(reader, format, samples_path, max_input);

    // The policy starts at --start, or at the first input's time: peek at it.
    let first = reader.next().transpose()?;
    let start = start.unwrap_or_else(|| {
        first
            .as_ref()
            .and_then(|(_, i)| earliest_at(i))
            .unwrap_or(0)
    });

    let bar = progress_bar(
        size,
        PROGRESS_MIN_BYTES,
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes}",
    );
    let mut lines = 0u64;
    let rest = std::iter::from_fn(|| {
        let item = reader.next();
        lines += 1;
        if let Some(b) = bar.as_ref().filter(|_| lines.is_multiple_of(1024)) {
            b.set_position(reader.bytes_read());
        }
        item
    });
    let source = first
        .into_iter()
        .map(Ok)
        .chain(rest)
        .map(|r| r.map(|(line, input)| (Origin::Line(line), input)));

    let stdout = std::io::stdout();
    let mut writer = TraceWriter::new(stdout.lock(), options, start);
    let result = drive(config, start, source, auto_ack, "", &mut |e, o| {
        writer.accept(e, o)
    });
    finish_bar(bar);
    // Whatever was replayed before a bad line is already printed; flush it, then fail.
    let summary = writer.finish();
    let policy = result?;
    conclude(&summary?, &policy, options)
}

/// Ends a replay whose trace is printed: the summary if asked for, then, if any input
/// was refused, a note with the count and the first refusal on stderr, or with
/// `--strict` the `inputs_refused` error.
fn conclude(summary: &Summary, policy: &Policy, options: ReplayOptions) -> Result<(), CliError> {
    if options.summary {
        eprint!("{}", summary.render(&policy.status()));
    }
    let Some(refusals) = summary.refusals() else {
        return Ok(());
    };
    if options.strict {
        return Err(CliError::bad_input("inputs_refused", "", refusals));
    }
    eprintln!("warning: {refusals} (--strict makes this an error)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollguard::{Action, Sample};

    const POLICY: &str = r#"{
      "format_version": 1,
      "versions": [{"id": "v1", "digest": "sha256:01", "validated": true},
                   {"id": "v2", "digest": "sha256:02"}],
      "stable": "v1", "candidate": "v2",
      "metrics": [{"name": "latency_ms", "kind": "value", "window_ms": 60000, "buckets": 6}],
      "gates": [{"name": "p95", "metric": "latency_ms", "stat": "p95",
                 "rule": {"kind": "threshold", "max": 300}, "samples_min": 5}],
      "strategy": {"kind": "canary", "steps": [
        {"kind": "set_weight", "weight": 10, "duration_ms": 120000},
        {"kind": "set_weight", "weight": 50, "duration_ms": 0}
      ]},
      "analysis": {"interval_ms": 30000}
    }"#;

    #[test]
    fn the_status_line_counts_effects_held_and_to_compensate() {
        let mut p = Policy::from_json(POLICY, 0).unwrap();
        let feed = |p: &mut Policy, input: serde_json::Value| {
            let _ = p.handle_json(&input.to_string()).unwrap();
        };
        let line = |p: &Policy| status_line(&p.status(), |t| t.to_string());
        feed(&mut p, serde_json::json!({"kind": "tick", "at": 0}));
        feed(
            &mut p,
            serde_json::json!({"kind": "ack", "at": 0, "action_id": 1}),
        );
        assert!(!line(&p).contains("effect"), "{}", line(&p));
        for id in ["a", "b"] {
            feed(
                &mut p,
                serde_json::json!({"kind": "record_effect", "at": 1000, "version": "v2",
                                   "effect": {"id": id, "undo": {}}}),
            );
        }
        assert!(line(&p).ends_with(", 2 effects held"), "{}", line(&p));
        feed(&mut p, serde_json::json!({"kind": "abort", "at": 2000}));
        feed(
            &mut p,
            serde_json::json!({"kind": "ack", "at": 2000, "action_id": 2}),
        );
        assert!(
            line(&p).ends_with(", 2 effects held, 2 to compensate"),
            "{}",
            line(&p)
        );
    }

    /// Samples every 5 s for 12.5 minutes from both versions.
    fn samples() -> Vec<Result<(Origin, Input), CliError>> {
        (0..150u64)
            .flat_map(|i| {
                let at = i * 5_000;
                ["v1", "v2"].map(|arm| {
                    Ok((
                        Origin::Line(i + 1),
                        Input::Observe(Sample::value(at, arm, "latency_ms", 100.0)),
                    ))
                })
            })
            .collect()
    }

    fn run(auto_ack: bool) -> (Policy, Vec<(TraceEntry, Origin)>) {
        let config = PolicyConfig::from_json(POLICY).unwrap();
        let mut trace = Vec::new();
        let policy = drive(
            config,
            0,
            samples().into_iter(),
            auto_ack,
            "",
            &mut |e, o| {
                trace.push((e.clone(), o));
                true
            },
        )
        .unwrap();
        (policy, trace)
    }

    #[test]
    fn auto_ack_drives_a_rollout_to_completion() {
        let (policy, trace) = run(true);
        assert_eq!(policy.status().aliases.stable, "v2");
        let acks: Vec<&(TraceEntry, Origin)> = trace
            .iter()
            .filter(|(e, _)| matches!(e.input, Input::Ack { .. }))
            .collect();
        // set_weight 10, set_weight 50, promote: three actions, three acks.
        assert_eq!(acks.len(), 3);
        for (entry, origin) in &acks {
            assert_eq!(*origin, Origin::AutoAck);
            assert!(entry.error.is_none(), "{entry:?}");
            // Each ack comes right after the step that issued its action, at its time.
            let before = &trace[entry.index as usize - 1].0;
            let step = before.step.as_ref().unwrap();
            let Input::Ack { at, action_id } = entry.input else {
                unreachable!()
            };
            assert_eq!(at, step.at);
            assert_eq!(
                Some(action_id),
                step.actions().last().and_then(|d| d.action_id)
            );
        }
        // The zero-duration 50 % step issues `promote` from inside the ack's own step,
        // and that action is acknowledged too.
        let promote_ack_step = trace.iter().find(|(e, _)| {
            e.step.as_ref().is_some_and(|s| {
                matches!(e.input, Input::Ack { .. })
                    && s.decisions
                        .iter()
                        .any(|d| matches!(d.action, Action::Promote { .. }))
            })
        });
        assert!(promote_ack_step.is_some());
        // Indices are consecutive across file inputs and acks.
        for (i, (e, _)) in trace.iter().enumerate() {
            assert_eq!(e.index as usize, i);
        }
    }

    #[test]
    fn without_auto_ack_the_first_action_times_out_and_halts() {
        let (policy, trace) = run(false);
        assert_eq!(policy.status().aliases.stable, "v1");
        assert!(trace.iter().all(|(_, o)| *o != Origin::AutoAck));
        assert!(policy.status().halted.is_some());
    }

    #[test]
    fn acks_skip_actions_that_timed_out_in_the_same_step() {
        let mut p = Policy::from_json(POLICY, 0).unwrap();
        // The first action is issued at once and its deadline (10 min) passes inside
        // one big jump of time.
        let issued = p.tick(0).unwrap();
        let entry = TraceEntry {
            index: 0,
            input: Input::Tick { at: 0 },
            step: Some(issued),
            error: None,
        };
        assert_eq!(acks_for(&entry).len(), 1);
        let late = p.tick(3_600_000).unwrap();
        let late_entry = TraceEntry {
            index: 1,
            input: Input::Tick { at: 3_600_000 },
            step: Some(late),
            error: None,
        };
        assert!(acks_for(&late_entry).is_empty());
    }

    #[test]
    fn a_source_error_ends_the_replay_with_that_error() {
        let config = PolicyConfig::from_json(POLICY).unwrap();
        let mut source = samples();
        source.insert(
            10,
            Err(CliError::bad_input("invalid_csv", "line 11", "bad")),
        );
        let mut seen = 0;
        let err = drive(config, 0, source.into_iter(), true, "", &mut |_, _| {
            seen += 1;
            true
        })
        .unwrap_err();
        assert_eq!(err.path, "line 11");
        assert!((10..20).contains(&seen), "{seen}");
    }

    #[test]
    fn config_errors_carry_their_path() {
        let mut config = PolicyConfig::from_json(POLICY).unwrap();
        config.analysis.interval_ms = 0;
        let err = drive(
            config,
            0,
            std::iter::empty(),
            true,
            "config",
            &mut |_, _| true,
        )
        .unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.path.as_str()),
            ("zero_duration", "config.analysis.interval_ms")
        );
    }

    #[test]
    fn writer_prints_only_entries_that_carry_something_unless_all() {
        let (policy, trace) = run(true);
        let selected = |all: bool| {
            let mut w = TraceWriter::new(
                Vec::new(),
                ReplayOptions {
                    all,
                    summary: true,
                    strict: false,
                },
                0,
            );
            for (e, o) in &trace {
                assert!(w.accept(e, *o));
            }
            let out = std::mem::take(&mut w.out);
            let summary = w.finish().unwrap();
            (String::from_utf8(out).unwrap(), summary)
        };
        let (some, summary) = selected(false);
        let (every, _) = selected(true);
        assert_eq!(every.lines().count(), trace.len());
        assert!(some.lines().count() < trace.len());
        for line in some.lines() {
            let entry: TraceEntry = serde_json::from_str(line).unwrap();
            assert!(entry.error.is_some() || !entry.step.unwrap().is_empty());
        }
        let text = summary.render(&policy.status());
        assert!(text.contains(&format!("summary: {} inputs, 0 refused", trace.len())));
        assert!(text.contains("auto-acks: 3"), "{text}");
        assert!(text.contains("promote 1"), "{text}");
        assert!(text.contains("final: stable v2"), "{text}");
    }

    #[test]
    fn summary_names_refused_inputs_by_origin() {
        let mut s = Summary::new(1_000);
        let entry = TraceEntry {
            index: 4,
            input: Input::ClearBreaker { at: 61_000 },
            step: None,
            error: Some(rollguard::Error::new(
                rollguard::ErrorCode::InvalidCommand,
                "",
                "the breaker is not open",
            )),
        };
        s.record(&entry, Origin::Line(9));
        assert_eq!(
            s.refused_detail,
            ["line 9 (clear_breaker at 0:01:00): invalid_command: the breaker is not open"]
        );
    }
}
