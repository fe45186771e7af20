//! Streams a scenario file: its header fields as they come, then its `inputs` one
//! element at a time, each replayed and its trace entry written before the next is
//! read, so memory does not grow with the number of inputs.
//!
//! The policy needs `format_version`, `config` and `start` before its first input.
//! When a file has all three before `inputs` (the order the library and `rollguard
//! demo --print-scenario` write), the inputs are streamed. A JSON object's keys may
//! come in any order and `start` may be left out (it is then 0), so otherwise the
//! inputs are parsed as they come and held until the end of the object, then
//! replayed: the trace is the same, only the memory is that of the whole list.
//!
//! Each value is parsed by the core from its own text (`PolicyConfig::from_json`,
//! `Input::from_json`), so errors keep their codes and paths (`inputs[12].at`,
//! `config.gates[0].rule.max`). An input's error gives the file's line and column
//! where the input ends; a config's error gives only its path. Every element of
//! `inputs`, and every other value, is read only up to the input limit: a longer one is
//! refused with `input_too_long` instead of taking gigabytes to parse.
//!
//! As the trace is written while the file is read, an error after the first input (a
//! bad input, an unknown field after `inputs`, trailing text) comes after the trace of
//! the inputs before it, as a bad line of a samples file does.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use rollguard::{ErrorCode, FORMAT_VERSION, Input, Policy, PolicyConfig, Timestamp, TraceEntry};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::CliError;
use crate::replay::{Origin, drive};
use crate::samples::too_long;

/// A scenario's fields, for serde's messages.
const FIELDS: &[&str] = &[
    "format_version",
    "name",
    "description",
    "config",
    "start",
    "inputs",
];

/// Where a replay's trace goes.
pub(crate) trait Sink {
    /// The policy starts at `start`; called once, before the first entry.
    fn start(&mut self, start: Timestamp);
    /// One trace entry, with the number of bytes of the file read so far. Returns
    /// false to stop the replay (the output failed).
    fn entry(&mut self, entry: &TraceEntry, origin: Origin, read: u64) -> bool;
}

/// Replays the scenario read from `reader` into `sink`, refusing any value longer
/// than `max` bytes; `source` names the file in I/O errors.
///
/// # Errors
/// The first error in the file (`invalid_json`, `unsupported_format_version`,
/// `input_too_long`, … with its path), a config the policy refuses, or `io`.
pub(crate) fn replay<R: Read>(
    reader: R,
    source: &Path,
    max: u64,
    auto_ack: bool,
    sink: &mut dyn Sink,
) -> Result<Policy, CliError> {
    let cx = Context {
        budget: Rc::new(Budget::default()),
        max,
        at: Cell::new(At::Top),
        failure: RefCell::new(None),
        stopped: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_reader(Bounded {
        inner: reader,
        budget: Rc::clone(&cx.budget),
    });
    let result = ScenarioSeed {
        cx: &cx,
        auto_ack,
        sink,
    }
    .deserialize(&mut de)
    .and_then(|policy| de.end().map(|()| policy));
    // Output that failed stopped the replay: the rest of the file does not matter.
    if let Some(policy) = cx.stopped.take() {
        return Ok(policy);
    }
    result.map_err(|e| cx.error(e, source))
}

/// How much of the file is read, and how far the value being read may go.
#[derive(Debug)]
struct Budget {
    read: Cell<u64>,
    /// Reading past this many bytes fails.
    until: Cell<u64>,
    /// Set when reading failed for that.
    exceeded: Cell<bool>,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            read: Cell::new(0),
            until: Cell::new(u64::MAX),
            exceeded: Cell::new(false),
        }
    }
}

/// A reader that counts what it reads and fails past the budget's limit.
struct Bounded<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let b = &self.budget;
        let left = b.until.get().saturating_sub(b.read.get());
        if left == 0 && !buf.is_empty() {
            b.exceeded.set(true);
            return Err(std::io::Error::other("the value is too long"));
        }
        let most = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = self.inner.read(&mut buf[..most])?;
        b.read.set(b.read.get() + n as u64);
        Ok(n)
    }
}

/// Where in the scenario the parser is, for the paths of serde's own errors.
#[derive(Debug, Clone, Copy)]
enum At {
    /// The scenario object itself.
    Top,
    /// The value of a field.
    Field(&'static str),
    /// Element `n` of `inputs`.
    Input(u32),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Top => Ok(()),
            Self::Field(name) => f.write_str(name),
            Self::Input(i) => write!(f, "inputs[{i}]"),
        }
    }
}

/// An error richer than serde's (a code, a path), to report instead of it.
struct Failure {
    error: CliError,
    /// Whether to add the file's line and column, which only serde's error knows.
    position: bool,
}

/// What the seeds share.
struct Context {
    budget: Rc<Budget>,
    max: u64,
    at: Cell<At>,
    failure: RefCell<Option<Failure>>,
    /// The policy of a replay stopped by its output.
    stopped: RefCell<Option<Policy>>,
}

impl Context {
    /// Limits the value about to be read to `max` bytes.
    fn bound(&self) {
        let b = &self.budget;
        b.until.set(b.read.get().saturating_add(self.max));
    }

    fn unbound(&self) {
        self.budget.until.set(u64::MAX);
    }

    /// Keeps `error` to report and hands serde an error to unwind with.
    fn fail<E: de::Error>(&self, error: CliError, position: bool) -> E {
        let unwind = E::custom(&error.message);
        *self.failure.borrow_mut() = Some(Failure { error, position });
        unwind
    }

    /// The error to report for serde's `e`.
    fn error(&self, e: serde_json::Error, source: &Path) -> CliError {
        let path = self.at.get().to_string();
        if self.budget.exceeded.get() {
            return too_long(path, self.max);
        }
        if let Some(Failure {
            mut error,
            position,
        }) = self.failure.take()
        {
            if position && e.line() > 0 {
                error.message = format!(
                    "{} at line {} column {}",
                    error.message,
                    e.line(),
                    e.column()
                );
            }
            return error;
        }
        if e.is_io() {
            return CliError::io(source, &std::io::Error::from(e));
        }
        CliError::bad_input("invalid_json", path, e.to_string())
    }
}

/// A core error from parsing the text of the value at `parent`, without the position
/// in that text (which is not the file's).
fn parse_error(e: &rollguard::Error, parent: &str) -> CliError {
    let mut error = CliError::core_within(e, parent);
    error.message = without_position(&error.message).to_string();
    error
}

/// A serde_json message without its ` at line L column C`.
fn without_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, position))
            if position.split_once(" column ").is_some_and(|(l, c)| {
                [l, c]
                    .iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            head
        }
        _ => message,
    }
}

/// The header fields read so far.
#[derive(Default)]
struct Header {
    format_version: bool,
    config: Option<PolicyConfig>,
    start: Option<Timestamp>,
    seen: Vec<&'static str>,
}

impl Header {
    /// The config and start, once all the policy needs is read.
    fn take_ready(&mut self) -> Option<(PolicyConfig, Timestamp)> {
        match (self.format_version, self.start) {
            (true, Some(start)) => self.config.take().map(|config| (config, start)),
            _ => None,
        }
    }
}

/// The scenario object: replays it and returns the policy at the end.
struct ScenarioSeed<'a> {
    cx: &'a Context,
    auto_ack: bool,
    sink: &'a mut dyn Sink,
}

impl<'de> DeserializeSeed<'de> for ScenarioSeed<'_> {
    type Value = Policy;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Policy, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScenarioSeed<'_> {
    type Value = Policy;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Scenario")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Policy, A::Error> {
        let cx = self.cx;
        let mut header = Header::default();
        let mut inputs = None;
        loop {
            cx.bound();
            let Some(key) = map.next_key::<String>()? else {
                break;
            };
            let Some(field) = FIELDS.iter().copied().find(|f| *f == key) else {
                let unknown: A::Error = de::Error::unknown_field(&key, FIELDS);
                let path = rollguard::key_path("", &key);
                let error = CliError::bad_input("invalid_json", path, unknown.to_string());
                return Err(cx.fail(error, true));
            };
            if header.seen.contains(&field) {
                let repeated: A::Error = de::Error::duplicate_field(field);
                let code = ErrorCode::DuplicateKey.as_str();
                let error = CliError::bad_input(code, field, repeated.to_string());
                return Err(cx.fail(error, true));
            }
            header.seen.push(field);
            cx.at.set(At::Field(field));
            match field {
                "format_version" => {
                    let version: u32 = map.next_value()?;
                    if version != FORMAT_VERSION {
                        let error = CliError::bad_input(
                            ErrorCode::UnsupportedFormatVersion.as_str(),
                            field,
                            format!("format_version {version} is not {FORMAT_VERSION}"),
                        );
                        return Err(cx.fail(error, false));
                    }
                    header.format_version = true;
                }
                "start" => header.start = Some(map.next_value()?),
                "config" => header.config = Some(map.next_value_seed(ConfigSeed(cx))?),
                "inputs" => {
                    cx.unbound();
                    inputs = Some(map.next_value_seed(InputsSeed {
                        cx,
                        header: &mut header,
                        auto_ack: self.auto_ack,
                        sink: &mut *self.sink,
                    })?);
                }
                // `name` and `description`: checked, not kept.
                _ => {
                    map.next_value::<String>()?;
                }
            }
            cx.at.set(At::Top);
        }
        match inputs {
            None => Err(de::Error::missing_field("inputs")),
            Some(Inputs::Replayed(policy)) => Ok(*policy),
            Some(Inputs::Held(inputs)) => {
                if !header.format_version {
                    return Err(de::Error::missing_field("format_version"));
                }
                let config = header
                    .config
                    .ok_or_else(|| de::Error::missing_field("config"))?;
                let start = header.start.unwrap_or(0);
                self.sink.start(start);
                let source = (0u32..)
                    .zip(inputs)
                    .map(|(i, input)| Ok((Origin::Scenario(i), input)));
                let read = cx.budget.read.get();
                drive(
                    config,
                    start,
                    source,
                    self.auto_ack,
                    "config",
                    &mut |e, o| self.sink.entry(e, o, read),
                )
                .map_err(|e| cx.fail(e, false))
            }
        }
    }
}

/// `config`: parsed by the core from its text.
struct ConfigSeed<'a>(&'a Context);

impl<'de> DeserializeSeed<'de> for ConfigSeed<'_> {
    type Value = PolicyConfig;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PolicyConfig, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        PolicyConfig::from_json(raw.get())
            .map_err(|e| self.0.fail(parse_error(&e, "config"), false))
    }
}

/// What became of `inputs`.
enum Inputs {
    /// Streamed through the policy, which is here.
    Replayed(Box<Policy>),
    /// Read before the header was complete: to replay at the end of the object.
    Held(Vec<Input>),
}

/// `inputs`: streamed through a policy when the header is complete, held otherwise.
struct InputsSeed<'a> {
    cx: &'a Context,
    header: &'a mut Header,
    auto_ack: bool,
    sink: &'a mut dyn Sink,
}

impl<'de> DeserializeSeed<'de> for InputsSeed<'_> {
    type Value = Inputs;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Inputs, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_> {
    type Value = Inputs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inputs, A::Error> {
        let cx = self.cx;
        let mut index = 0u32;
        let Some((config, start)) = self.header.take_ready() else {
            let mut held = Vec::new();
            while let Some(input) = seq.next_element_seed(InputSeed { cx, index })? {
                held.push(input);
                index = index.saturating_add(1);
            }
            return Ok(Inputs::Held(held));
        };
        self.sink.start(start);
        let mut failed = None;
        let source = std::iter::from_fn(|| match seq.next_element_seed(InputSeed { cx, index }) {
            Ok(Some(input)) => {
                let origin = Origin::Scenario(index);
                index = index.saturating_add(1);
                Some(Ok((origin, input)))
            }
            Ok(None) => None,
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        let mut stopped = false;
        let policy = drive(
            config,
            start,
            source,
            self.auto_ack,
            "config",
            &mut |e, o| {
                let more = self.sink.entry(e, o, cx.budget.read.get());
                stopped |= !more;
                more
            },
        );
        match (failed, policy) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(cx.fail(e, false)),
            (None, Ok(policy)) if stopped => {
                *cx.stopped.borrow_mut() = Some(policy);
                Err(de::Error::custom("the output failed"))
            }
            (None, Ok(policy)) => Ok(Inputs::Replayed(Box::new(policy))),
        }
    }
}

/// One element of `inputs`: parsed by the core from its text, at most `max` bytes.
struct InputSeed<'a> {
    cx: &'a Context,
    index: u32,
}

impl<'de> DeserializeSeed<'de> for InputSeed<'_> {
    type Value = Input;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Input, D::Error> {
        let cx = self.cx;
        cx.at.set(At::Input(self.index));
        cx.bound();
        let raw = Box::<RawValue>::deserialize(d)?;
        cx.unbound();
        let path = At::Input(self.index).to_string();
        let input =
            Input::from_json(raw.get()).map_err(|e| cx.fail(parse_error(&e, &path), true))?;
        cx.at.set(At::Field("inputs"));
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::DEMO_JSON;
    use rollguard::Scenario;

    /// Keeps what a replay wrote.
    #[derive(Default)]
    struct Recorder {
        start: Option<Timestamp>,
        entries: Vec<TraceEntry>,
        /// Bytes read when each entry was written.
        read: Vec<u64>,
        /// Stop after this many entries.
        stop_after: Option<usize>,
    }

    impl Sink for Recorder {
        fn start(&mut self, start: Timestamp) {
            assert!(self.start.is_none() && self.entries.is_empty());
            self.start = Some(start);
        }

        fn entry(&mut self, entry: &TraceEntry, _: Origin, read: u64) -> bool {
            self.entries.push(entry.clone());
            self.read.push(read);
            self.stop_after != Some(self.entries.len())
        }
    }

    fn run(text: &str, max: u64) -> (Result<Policy, CliError>, Recorder) {
        let mut rec = Recorder::default();
        let result = replay(text.as_bytes(), Path::new("t"), max, false, &mut rec);
        (result, rec)
    }

    fn error(text: &str) -> CliError {
        run(text, 1 << 20).0.map(|_| ()).unwrap_err()
    }

    /// The demo's scenario with its fields in `order`.
    fn reordered(order: &[&str]) -> String {
        let value: serde_json::Value = serde_json::from_str(DEMO_JSON).unwrap();
        let fields: Vec<String> = order
            .iter()
            .map(|k| format!("{:?}:{}", k, value[k]))
            .collect();
        format!("{{{}}}", fields.join(",\n"))
    }

    #[test]
    fn a_streamed_scenario_replays_as_the_library_does_in_any_field_order() {
        let scenario = Scenario::from_json(DEMO_JSON).unwrap();
        let expected = rollguard::replay(&scenario).unwrap();
        let streamed = reordered(&["format_version", "config", "start", "inputs", "name"]);
        // `start` after the inputs, or left out: they are held, then replayed.
        let late_start = reordered(&["inputs", "config", "format_version", "start"]);
        for text in [DEMO_JSON, &streamed, &late_start] {
            let (policy, rec) = run(text, 1 << 20);
            assert_eq!(rec.entries, expected);
            assert_eq!(rec.start, Some(scenario.start));
            assert_eq!(policy.unwrap().snapshot(), {
                let mut p = Policy::new(scenario.config.clone(), scenario.start).unwrap();
                for i in &scenario.inputs {
                    let _ = p.handle(i);
                }
                p.snapshot()
            });
        }
        let mut no_start: serde_json::Value = serde_json::from_str(DEMO_JSON).unwrap();
        no_start.as_object_mut().unwrap().remove("start");
        let (_, rec) = run(&no_start.to_string(), 1 << 20);
        assert_eq!(rec.start, Some(0));
    }

    #[test]
    fn inputs_after_the_header_are_replayed_as_they_are_read() {
        let (_, rec) = run(DEMO_JSON, 1 << 20);
        // Each entry was written when little more than its own input was read.
        assert!(rec.read[0] < DEMO_JSON.len() as u64 / 10, "{}", rec.read[0]);
        assert!(rec.read.windows(2).all(|w| w[0] < w[1]));
        // And the file is not needed beyond the input being replayed: a read that
        // fails halfway stops the replay there, after the trace before it.
        let half = &DEMO_JSON.as_bytes()[..DEMO_JSON.len() / 2];
        let failing = half.chain(Failing);
        let mut rec = Recorder::default();
        let err = replay(failing, Path::new("f"), 1 << 20, false, &mut rec).unwrap_err();
        assert_eq!((err.code.as_str(), err.path.as_str()), ("io", "f"));
        assert!(!rec.entries.is_empty());
    }

    /// A reader whose every read fails.
    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn output_that_stops_the_replay_stops_reading() {
        let mut text = DEMO_JSON.trim_end().to_string();
        text.truncate(text.len() * 3 / 4); // the rest is never read
        let mut rec = Recorder {
            stop_after: Some(3),
            ..Recorder::default()
        };
        let policy = replay(text.as_bytes(), Path::new("t"), 1 << 20, false, &mut rec);
        assert!(policy.is_ok());
        assert_eq!(rec.entries.len(), 3);
    }

    #[test]
    fn errors_keep_the_codes_paths_and_positions_of_a_whole_parse() {
        let config =
            serde_json::to_string(&Scenario::from_json(DEMO_JSON).unwrap().config).unwrap();
        let doc = |rest: &str| {
            format!(
                "{{\"format_version\": 1, \"start\": 0, \"config\": {config},\n\"inputs\": [\n{{\"kind\": \"tick\", \"at\": 1}},\n{rest}"
            )
        };
        for text in [
            doc(r#"{"kind": "tick", "at": "x"}]}"#),
            doc(r#"{"kind": "tick"}]}"#),
            doc(r#"{"kind": "teleport", "at": 1}]}"#),
            doc(r#"{"kind": "ack", "at": 1, "action_id": 1, "extra": 2}]}"#),
            doc(r#"{"kind": "register_version", "at": 1, "version": {"id": "v9", "digest": 5}}]}"#),
            doc("7]}"),
            doc("]}\n"),
            doc("], \"inputs\": []}"),
            doc("], \"colour\": 1}"),
            doc("], \"a.b\\u001f\": 1}"),
            doc(r#"{"kind": "tick", "at": 1, "at": 2}]}"#),
            doc(
                r#"{"kind": "register_version", "at": 1, "version": {"id": "v9", "digest": "d", "components": {"a.b": "x", "a.b": "y"}}}]}"#,
            ),
            doc("], \"start\": 0}"),
            doc("] }  x"),
            doc("], \"format_version\": 2}"),
            format!(r#"{{"format_version": 2, "start": 0, "config": {config}, "inputs": []}}"#),
            r#"{"format_version": 1, "config": {"format_version": 1}, "inputs": []}"#.to_string(),
            r#"{"format_version": "1", "config": {}, "inputs": []}"#.to_string(),
            r#"{"format_version": 1, "start": -1, "inputs": []}"#.to_string(),
            r#"{"format_version": 1, "inputs": []}"#.to_string(),
            r#"{"format_version": 1, "name": 5}"#.to_string(),
            r#"{"format_version": 1, "format_version": 1, "inputs": []}"#.to_string(),
            format!(
                r#"{{"format_version": 1, "config": {}, "inputs": []}}"#,
                config.replacen("{", r#"{"stable": "v1", "#, 1)
            ),
            String::new(),
            "{".to_string(),
            "null".to_string(),
            r#"{"format_version": 1, "inputs": {}}"#.to_string(),
        ] {
            let whole = Scenario::from_json(&text).unwrap_err();
            let streamed = error(&text);
            assert_eq!(
                (streamed.code.as_str(), streamed.path.as_str()),
                (whole.code.as_str(), whole.path.as_str()),
                "{text}"
            );
            // Inputs' errors read the same; the header's may place the error a column
            // further on; a config's lose the position inside the config's own text;
            // a repeated key in an input is placed at the input's end, not at the key.
            if whole.path.starts_with("inputs[") && whole.code != ErrorCode::DuplicateKey {
                assert_eq!(streamed.message, whole.message, "{text}");
            } else {
                assert_eq!(
                    without_position(&streamed.message),
                    without_position(&whole.message),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn a_syntax_error_inside_an_input_names_that_input() {
        let text = reordered(&["format_version", "config", "start", "inputs"]);
        let first = "\"samples\":[{\"arm\":\"v1\",\"at\":0,";
        assert!(text.contains(first));
        let e = error(&text.replacen(first, "\"samples\":[{\"arm\":\"v1\",\"at\":0 0,", 1));
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("invalid_json", "inputs[0]")
        );
        assert!(e.message.starts_with("expected `,` or `}` at line "), "{e}");
    }

    #[test]
    fn a_value_longer_than_the_limit_is_refused_before_it_is_read() {
        let scenario = Scenario::from_json(DEMO_JSON).unwrap();
        let config = serde_json::to_string(&scenario.config).unwrap();
        let batch = format!(
            r#"{{"kind":"observe_batch","samples":[{}]}}"#,
            vec![r#"{"at":1,"arm":"v1","metric":"latency_ms","value":1}"#; 1000].join(",")
        );
        let text = format!(
            r#"{{"format_version":1,"start":0,"config":{config},"inputs":[{{"kind":"tick","at":1}},{batch}]}}"#
        );
        let max = config.len() as u64 + 10;
        assert!((batch.len() as u64) > max);
        let (result, rec) = run(&text, max);
        let e = result.map(|_| ()).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("input_too_long", "inputs[1]")
        );
        assert_eq!(rec.entries.len(), 1, "the input before it was replayed");
        // A higher limit reads it.
        let (result, rec) = run(&text, batch.len() as u64 + 10);
        assert!(result.is_ok());
        assert_eq!(rec.entries.len(), 2);
        // Every other field is bounded too.
        let long = format!(
            r#"{{"format_version":1,"description":"{}","config":{config},"inputs":[]}}"#,
            "x".repeat(max as usize)
        );
        let e = run(&long, max).0.map(|_| ()).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("input_too_long", "description")
        );
    }
}
