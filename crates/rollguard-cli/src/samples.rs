//! Streaming readers for recorded metrics: JSON lines or CSV, one input per line.
//!
//! - **JSONL**: each line is an [`Input`] (an object with `kind`), or a bare
//!   [`Sample`] object without `kind`, which means `observe`.
//! - **CSV**: a header naming some of `at,arm,metric,value,events,total,tenant,tier,agent`
//!   (`at`, `arm` and `metric` are required; any order), then one sample per row. An
//!   empty cell is an absent field. Cells may be quoted with `"` (a doubled `""`
//!   inside quotes is a quote); a quoted cell cannot span lines.
//!
//! Blank lines are skipped. The file is read one line at a time, so its size does not
//! matter, and a line is read only up to a limit ([`DEFAULT_MAX_INPUT_BYTES`] unless
//! `--max-input-bytes` says otherwise): one huge line (a batch of millions of samples)
//! is refused with `input_too_long` instead of taking gigabytes to parse. A line that
//! does not parse is an error naming its line number; a line that parses but that the
//! policy refuses (unknown metric, negative count) is not an error here: it is replayed
//! and shows up in the trace with its error.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use rollguard::{Input, Sample};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::CliError;

/// The longest line of a samples file, or JSON text of one scenario input, that is
/// read: 1 MiB, some 15 000 samples in one batch. Parsing takes some 30 bytes of memory
/// per byte of JSON, so a 200 MB batch would take 6 GB.
pub(crate) const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 20;

/// The error for an input longer than `max` bytes at `path`.
pub(crate) fn too_long(path: impl Into<String>, max: u64) -> CliError {
    CliError::bad_input(
        "input_too_long",
        path,
        format!("longer than {max} bytes (--max-input-bytes raises the limit)"),
    )
}

/// The format of a samples file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON input or bare sample per line.
    Jsonl,
    /// A header, then one sample per row.
    Csv,
}

impl Format {
    /// CSV for a `.csv` extension (any case), JSON lines otherwise.
    pub(crate) fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::Csv,
            _ => Self::Jsonl,
        }
    }
}

/// The CSV columns a header may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    At,
    Arm,
    Metric,
    Value,
    Events,
    Total,
    Tenant,
    Tier,
    Agent,
}

const COLUMNS: [(&str, Column); 9] = [
    ("at", Column::At),
    ("arm", Column::Arm),
    ("metric", Column::Metric),
    ("value", Column::Value),
    ("events", Column::Events),
    ("total", Column::Total),
    ("tenant", Column::Tenant),
    ("tier", Column::Tier),
    ("agent", Column::Agent),
];

/// Reads inputs from a samples file, one line at a time.
///
/// Yields `(line number, input)`; after the first error it yields nothing more.
pub(crate) struct SampleReader<R> {
    reader: R,
    format: Format,
    /// For I/O errors.
    source: PathBuf,
    /// The number of the last line read (1-based).
    line: u64,
    /// Bytes read so far, for progress.
    bytes: u64,
    /// The longest line read, line ending excluded.
    max_line: u64,
    /// The current line, without its line ending.
    buf: String,
    /// The CSV header, once read.
    columns: Option<Vec<Column>>,
    done: bool,
}

impl<R: BufRead> SampleReader<R> {
    /// A reader of `format` over `reader`, refusing lines longer than `max_line`
    /// bytes (line ending excluded); `source` names it in I/O errors.
    pub(crate) fn new(reader: R, format: Format, source: &Path, max_line: u64) -> Self {
        Self {
            reader,
            format,
            source: source.to_path_buf(),
            line: 0,
            bytes: 0,
            max_line,
            buf: String::new(),
            columns: None,
            done: false,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next non-blank line into `buf`, without its line ending; `None` at the end.
    fn next_line(&mut self) -> Result<Option<()>, CliError> {
        loop {
            // Reuse the last line's allocation.
            let mut raw = std::mem::take(&mut self.buf).into_bytes();
            raw.clear();
            // At most the longest line and its `\r\n`: anything more is too long.
            let most = self.max_line.saturating_add(2);
            let n = (&mut self.reader)
                .take(most)
                .read_until(b'\n', &mut raw)
                .map_err(|e| CliError::io(&self.source, &e))?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes += n as u64;
            self.line += 1;
            let end = raw.len()
                - raw
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
            if end as u64 > self.max_line {
                return Err(too_long(format!("line {}", self.line), self.max_line));
            }
            raw.truncate(end);
            self.buf = String::from_utf8(raw).map_err(|_| {
                CliError::bad_input(
                    "invalid_utf8",
                    format!("line {}", self.line),
                    "the line is not valid UTF-8",
                )
            })?;
            if !self.buf.trim().is_empty() {
                return Ok(Some(()));
            }
        }
    }

    fn next_input(&mut self) -> Result<Option<(u64, Input)>, CliError> {
        if self.next_line()?.is_none() {
            return Ok(None);
        }
        match self.format {
            Format::Jsonl => parse_jsonl_line(&self.buf, self.line).map(|i| Some((self.line, i))),
            Format::Csv => {
                if self.columns.is_none() {
                    self.columns = Some(parse_csv_header(&self.buf, self.line)?);
                    if self.next_line()?.is_none() {
                        return Ok(None);
                    }
                }
                let columns = self.columns.as_deref().unwrap_or_default();
                parse_csv_record(columns, &self.buf, self.line).map(|i| Some((self.line, i)))
            }
        }
    }
}

impl<R: BufRead> Iterator for SampleReader<R> {
    type Item = Result<(u64, Input), CliError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_input() {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// `line 12`, or `line 12 (samples[0].value)` with a path inside the line.
fn line_path(line: u64, inner: &str) -> String {
    if inner.is_empty() {
        format!("line {line}")
    } else {
        format!("line {line} ({inner})")
    }
}

fn bad_line(code: &str, line: u64, inner: &str, message: impl Into<String>) -> CliError {
    CliError::bad_input(code, line_path(line, inner), message)
}

/// Parses one JSON line: an input with `kind`, or a bare sample meaning `observe`.
pub(crate) fn parse_jsonl_line(text: &str, line: u64) -> Result<Input, CliError> {
    // A cheap first pass that only looks for `kind` and ignores everything else.
    #[derive(Deserialize)]
    struct Probe {
        kind: Option<IgnoredAny>,
    }
    // Serde reads a struct from an array too; a line must be an object.
    if !text.trim_start().starts_with('{') {
        return Err(bad_line(
            "invalid_json",
            line,
            "",
            "expected a JSON object: an input with `kind`, or a bare sample",
        ));
    }
    let core = |e: rollguard::Error| bad_line(e.code.as_str(), line, &e.path, e.message);
    match serde_json::from_str::<Probe>(text) {
        Ok(Probe { kind: None }) => Sample::from_json(text).map(Input::Observe).map_err(core),
        Err(e) if e.is_syntax() || e.is_eof() => {
            Err(bad_line("invalid_json", line, "", e.to_string()))
        }
        // With `kind` (the probe fails only on a repeated `kind`, which the core's
        // parser names).
        _ => Input::from_json(text).map_err(core),
    }
}

/// Splits one CSV line into cells. Unquoted cells are trimmed; quoted ones are kept
/// exactly, with `""` read as `"`.
pub(crate) fn split_csv_line(text: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum State {
        /// At the start of a cell.
        Start,
        /// Inside an unquoted cell.
        Plain,
        /// Inside quotes.
        Quoted,
        /// Just after a closing quote: only a comma or the end may follow.
        Closed,
    }
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut state = State::Start;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (&state, c) {
            (State::Quoted, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (State::Quoted, '"') => state = State::Closed,
            (State::Quoted, c) => cell.push(c),
            (State::Start, '"') if cell.trim().is_empty() => {
                cell.clear();
                state = State::Quoted;
            }
            (State::Closed, ',') | (State::Start | State::Plain, ',') => {
                let done = std::mem::take(&mut cell);
                cells.push(if state == State::Closed {
                    done
                } else {
                    done.trim().to_string()
                });
                state = State::Start;
            }
            (State::Closed, c) if c.is_whitespace() => {}
            (State::Closed, _) => return Err("text after a closing quote".into()),
            (State::Start | State::Plain, '"') => {
                return Err("a quote inside an unquoted cell (quote the whole cell)".into());
            }
            (State::Start, c) if c.is_whitespace() => cell.push(c),
            (State::Start | State::Plain, c) => {
                cell.push(c);
                state = State::Plain;
            }
        }
    }
    match state {
        State::Quoted => Err("unterminated quote (a cell cannot span lines)".into()),
        State::Closed => {
            cells.push(cell);
            Ok(cells)
        }
        State::Start | State::Plain => {
            cells.push(cell.trim().to_string());
            Ok(cells)
        }
    }
}

fn parse_csv_header(text: &str, line: u64) -> Result<Vec<Column>, CliError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let names = split_csv_line(text).map_err(|m| bad_line("invalid_csv", line, "header", m))?;
    let mut columns = Vec::with_capacity(names.len());
    for name in &names {
        let column = COLUMNS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                bad_line(
                    "invalid_csv",
                    line,
                    "header",
                    format!(
                        "unknown column {name:?}; columns are at,arm,metric,value,events,total,tenant,tier,agent"
                    ),
                )
            })?;
        if columns.contains(&column) {
            return Err(bad_line(
                "invalid_csv",
                line,
                "header",
                format!("column {name:?} appears twice"),
            ));
        }
        columns.push(column);
    }
    for (name, required) in [
        ("at", Column::At),
        ("arm", Column::Arm),
        ("metric", Column::Metric),
    ] {
        if !columns.contains(&required) {
            return Err(bad_line(
                "invalid_csv",
                line,
                "header",
                format!("the header has no {name:?} column"),
            ));
        }
    }
    Ok(columns)
}

fn parse_csv_record(columns: &[Column], text: &str, line: u64) -> Result<Input, CliError> {
    let cells = split_csv_line(text).map_err(|m| bad_line("invalid_csv", line, "", m))?;
    if cells.len() != columns.len() {
        return Err(bad_line(
            "invalid_csv",
            line,
            "",
            format!(
                "{} cells, but the header has {} columns",
                cells.len(),
                columns.len()
            ),
        ));
    }
    let mut sample = Sample {
        at: 0,
        arm: String::new(),
        metric: String::new(),
        value: None,
        events: None,
        total: None,
        tenant: None,
        tier: None,
        agent: None,
    };
    let mut at = None;
    for (column, cell) in columns.iter().zip(cells) {
        if cell.is_empty() {
            continue; // an empty cell is an absent field
        }
        let name = COLUMNS
            .iter()
            .find(|(_, c)| c == column)
            .map_or("", |(n, _)| *n);
        let number_error = |what: &str| {
            bad_line(
                "invalid_csv",
                line,
                name,
                format!("cannot read {cell:?} as {what}"),
            )
        };
        match column {
            Column::At => {
                at = Some(
                    cell.parse::<u64>()
                        .map_err(|_| number_error("a time in ms"))?,
                )
            }
            Column::Arm => sample.arm = cell,
            Column::Metric => sample.metric = cell,
            Column::Value => {
                let v: f64 = cell.parse().map_err(|_| number_error("a number"))?;
                if !v.is_finite() {
                    return Err(bad_line(
                        "non_finite_value",
                        line,
                        name,
                        format!("{cell:?} is not a finite number"),
                    ));
                }
                sample.value = Some(v);
            }
            Column::Events => {
                sample.events = Some(cell.parse().map_err(|_| number_error("an integer"))?)
            }
            Column::Total => {
                sample.total = Some(cell.parse().map_err(|_| number_error("an integer"))?)
            }
            Column::Tenant => sample.tenant = Some(cell),
            Column::Tier => sample.tier = Some(cell),
            Column::Agent => sample.agent = Some(cell),
        }
    }
    sample.at = at.ok_or_else(|| bad_line("invalid_csv", line, "at", "a time is required"))?;
    for (name, empty) in [
        ("arm", sample.arm.is_empty()),
        ("metric", sample.metric.is_empty()),
    ] {
        if empty {
            return Err(bad_line(
                "invalid_csv",
                line,
                name,
                format!("{name} is required"),
            ));
        }
    }
    Ok(Input::Observe(sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: Format, text: &str) -> Vec<Result<(u64, Input), CliError>> {
        SampleReader::new(text.as_bytes(), format, Path::new("test"), 1 << 10).collect()
    }

    fn ok(format: Format, text: &str) -> Vec<(u64, Input)> {
        read(format, text)
            .into_iter()
            .map(|r| r.expect("parses"))
            .collect()
    }

    fn err(format: Format, text: &str) -> CliError {
        read(format, text)
            .into_iter()
            .find_map(Result::err)
            .expect("an error")
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::for_path(Path::new("a/b.CSV")), Format::Csv);
        assert_eq!(Format::for_path(Path::new("b.jsonl")), Format::Jsonl);
        assert_eq!(Format::for_path(Path::new("-")), Format::Jsonl);
    }

    #[test]
    fn jsonl_reads_inputs_and_bare_samples_and_skips_blank_lines() {
        let text = concat!(
            "{\"kind\":\"tick\",\"at\":5}\n",
            "\n",
            "   \r\n",
            "{\"at\":7,\"arm\":\"v2\",\"metric\":\"errors\",\"events\":1,\"total\":9}\r\n",
            "{\"kind\":\"observe\",\"at\":8,\"arm\":\"v1\",\"metric\":\"lat\",\"value\":1.5}",
        );
        let got = ok(Format::Jsonl, text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1, Input::Tick { at: 5 }));
        assert_eq!(
            got[1],
            (4, Input::Observe(Sample::count(7, "v2", "errors", 1, 9)))
        );
        assert_eq!(
            got[2],
            (5, Input::Observe(Sample::value(8, "v1", "lat", 1.5)))
        );
    }

    #[test]
    fn jsonl_bad_lines_name_their_line_and_field() {
        let e = err(
            Format::Jsonl,
            "{\"kind\":\"tick\",\"at\":1}\n{\"at\":2,\"arm\":\"v1\",\"metric\":\"m\",\"value\":\"x\"}\n",
        );
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("invalid_json", "line 2 (value)")
        );
        assert_eq!(e.exit, crate::error::EXIT_BAD_INPUT);

        let e = err(Format::Jsonl, "{\"kind\":\"tick\"\n");
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("invalid_json", "line 1")
        );

        let e = err(Format::Jsonl, "[1, 2]\n");
        assert!(e.message.contains("expected a JSON object"), "{e}");

        let e = err(Format::Jsonl, "{\"kind\":\"teleport\",\"at\":1}\n");
        assert_eq!(e.code, "invalid_json");

        let e = err(
            Format::Jsonl,
            "{\"at\":1,\"arm\":\"v1\",\"metric\":\"m\",\"value\":1,\"colour\":2}",
        );
        assert!(e.message.contains("colour"), "{e}");

        let e = err(Format::Jsonl, "{\"kind\":\"tick\",\"at\":1} trailing\n");
        assert_eq!(e.path, "line 1");
    }

    #[test]
    fn jsonl_lines_with_a_repeated_key_are_refused() {
        for (text, path) in [
            ("{\"kind\":\"tick\",\"at\":1000,\"at\":500}", "line 1 (at)"),
            (
                "{\"kind\":\"tick\",\"kind\":\"tick\",\"at\":5}",
                "line 1 (kind)",
            ),
            (
                "{\"at\":2,\"arm\":\"v1\",\"metric\":\"m\",\"value\":1,\"value\":2}",
                "line 1 (value)",
            ),
        ] {
            let e = err(Format::Jsonl, text);
            assert_eq!(
                (e.code.as_str(), e.path.as_str()),
                ("duplicate_key", path),
                "{text}"
            );
        }
    }

    #[test]
    fn reading_stops_after_the_first_error() {
        let all = read(Format::Jsonl, "nope\n{\"kind\":\"tick\",\"at\":1}\n");
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
    }

    #[test]
    fn invalid_utf8_is_bad_input_with_its_line() {
        let bytes: &[u8] = b"{\"kind\":\"tick\",\"at\":1}\n\xff\xfe\n";
        let e = SampleReader::new(bytes, Format::Jsonl, Path::new("x"), 1 << 10)
            .find_map(Result::err)
            .unwrap();
        assert_eq!(
            (e.code.as_str(), e.path.as_str()),
            ("invalid_utf8", "line 2")
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_with_its_number() {
        let tick = "{\"kind\":\"tick\",\"at\":1}"; // 22 bytes
        let read = |text: &str, max: u64| -> Vec<Result<(u64, Input), CliError>> {
            SampleReader::new(text.as_bytes(), Format::Jsonl, Path::new("t"), max).collect()
        };
        // Exactly the limit is fine, with or without a line ending of either kind.
        for text in [
            tick.to_string(),
            format!("{tick}\n{tick}\n"),
            format!("{tick}\r\n{tick}"),
        ] {
            let got = read(&text, 22);
            assert!(!got.is_empty() && got.iter().all(Result::is_ok), "{text:?}");
        }
        let long = format!("{tick}\n\n{{\"kind\":\"tick\",\"at\":10}}\n{tick}\n");
        let got = read(&long, 22);
        assert_eq!(got.len(), 2, "the replay stops at the long line");
        let e = got[1].clone().unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.path.as_str(), e.exit),
            ("input_too_long", "line 3", crate::error::EXIT_BAD_INPUT)
        );
        assert!(e.message.contains("longer than 22 bytes"), "{e}");
        // A multi-byte character cut by the limit is a long line, not bad UTF-8.
        let e = read("\"ééééé\"\n", 4).remove(0).unwrap_err();
        assert_eq!(e.code, "input_too_long");
    }

    #[test]
    fn csv_reads_rows_with_empty_cells_as_absent() {
        let text = "at,arm,metric,value,events,total,tenant,tier,agent\n\
                    1000,v1,latency_ms,120.5,,,,,\n\
                    \n\
                    1000,v2,errors,,3,100,acme,gold,\n";
        let got = ok(Format::Csv, text);
        assert_eq!(
            got[0],
            (
                2,
                Input::Observe(Sample::value(1000, "v1", "latency_ms", 120.5))
            )
        );
        let mut s = Sample::count(1000, "v2", "errors", 3, 100);
        s.tenant = Some("acme".into());
        s.tier = Some("gold".into());
        assert_eq!(got[1], (4, Input::Observe(s)));
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_cells_may_be_quoted() {
        let text = "\u{feff}metric, at ,arm,value,agent\n\
                    quality,5, v3 ,0.9,\"planner, \"\"beta\"\"\"\n";
        let got = ok(Format::Csv, text);
        let mut s = Sample::value(5, "v3", "quality", 0.9);
        s.agent = Some("planner, \"beta\"".into());
        assert_eq!(got, vec![(2, Input::Observe(s))]);
    }

    #[test]
    fn csv_bad_lines_are_errors_with_line_numbers() {
        let header = "at,arm,metric,value\n";
        let cases = [
            (
                format!("{header}1,v1,m,abc\n"),
                "invalid_csv",
                "line 2 (value)",
            ),
            (format!("{header}1,v1,m\n"), "invalid_csv", "line 2"),
            (
                format!("{header}\n\nx,v1,m,1\n"),
                "invalid_csv",
                "line 4 (at)",
            ),
            (format!("{header}1,,m,1\n"), "invalid_csv", "line 2 (arm)"),
            (format!("{header},v1,m,1\n"), "invalid_csv", "line 2 (at)"),
            (
                format!("{header}1,v1,m,NaN\n"),
                "non_finite_value",
                "line 2 (value)",
            ),
            (format!("{header}1,\"v1,m,1\n"), "invalid_csv", "line 2"),
            (format!("{header}1,v\"1,m,1\n"), "invalid_csv", "line 2"),
            (
                "at,arm,colour\n".to_string(),
                "invalid_csv",
                "line 1 (header)",
            ),
            (
                "at,arm,arm,metric\n".to_string(),
                "invalid_csv",
                "line 1 (header)",
            ),
            ("at,metric\n".to_string(), "invalid_csv", "line 1 (header)"),
            (
                "at,arm,metric,events,total\n1,v1,m,1.5,2\n".to_string(),
                "invalid_csv",
                "line 2 (events)",
            ),
        ];
        for (text, code, path) in cases {
            let e = err(Format::Csv, &text);
            assert_eq!(
                (e.code.as_str(), e.path.as_str()),
                (code, path),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn csv_with_only_a_header_has_no_inputs() {
        assert!(ok(Format::Csv, "at,arm,metric,value\n\n").is_empty());
    }

    #[test]
    fn split_handles_quotes_and_whitespace() {
        assert_eq!(split_csv_line("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_csv_line("\" a \",\"\"").unwrap(), [" a ", ""]);
        assert_eq!(split_csv_line(",,").unwrap(), ["", "", ""]);
        assert_eq!(split_csv_line(" \"x\" ,y").unwrap(), ["x", "y"]);
        assert!(split_csv_line("\"x\"y").is_err());
    }

    #[test]
    fn bytes_read_counts_the_whole_file() {
        let text = "{\"kind\":\"tick\",\"at\":1}\n\n{\"kind\":\"tick\",\"at\":2}\n";
        let mut r = SampleReader::new(text.as_bytes(), Format::Jsonl, Path::new("t"), 1 << 10);
        while r.next().is_some() {}
        assert_eq!(r.bytes_read(), text.len() as u64);
    }
}
