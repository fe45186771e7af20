//! WebAssembly bindings of rollguard, built into the `rollguard` npm package.
//!
//! The binding is thin: every decision is the core's. This crate only converts
//!
//! - JS data documents (config, inputs, samples, snapshots, scenarios) into
//!   `serde_json::Value`s that the core's own `from_value` functions parse, so that
//!   refusals carry the core's codes and paths;
//! - the core's outputs into JS, as the core's canonical JSON text parsed by
//!   `JSON.parse`, so that JS sees exactly the numbers Rust serialized;
//! - JS numbers used as times and counts into integers, refusing (never truncating)
//!   fractions and values JS cannot represent exactly;
//! - [`rollguard::Error`] into a thrown JS `Error` with `name = "RollguardError"`,
//!   `code` and `path`.
//!
//! Methods are camelCase (`nextDeadline`, `observeMany`); data documents keep the
//! canonical snake_case keys, so one policy file loads unchanged in Rust, Python and JS.
//! Nothing here panics on input: the core refuses bad input with an error instead.
#![forbid(unsafe_code)]

use rollguard::{
    AgentInput, Agents, AgentsConfig, AgentsSnapshot, Error, ErrorCode, Input, Policy,
    PolicyConfig, Sample, Scenario, Snapshot, Step, TIME_MAX,
};
use serde::Serialize;
use serde_json::{Map, Number, Value};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = include_str!("types.d.ts");

/// The result type of every exported function: a thrown `RollguardError` on failure.
type JsResult<T> = Result<T, JsValue>;

// ---------------------------------------------------------------------- errors

/// A thrown JS `Error` carrying the core's stable `code` and the field's `path`.
fn js_error(e: &Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("RollguardError");
    let obj: &JsValue = err.as_ref();
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(obj, &"code".into(), &e.code.as_str().into());
    let _ = js_sys::Reflect::set(obj, &"path".into(), &e.path.as_str().into());
    err.into()
}

fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidJson, path, message)
}

// ---------------------------------------------------------------------- numbers

/// 2^64 as a double: the first double above every `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
/// 2^63 as a double.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A JS number used as a time (ms), as the core reads one
/// ([`rollguard::time_from_number`]).
fn time(x: f64, path: &str) -> Result<u64, Error> {
    rollguard::time_from_number(x, path)
}

/// A JS number in a data document, as the JSON parser would read its shortest text:
/// integers stay integers (so `2 ** 53` reaches the core as the integer it is and is
/// refused as `time_out_of_range`, like the same text), everything else is a double.
/// JSON has no NaN or infinity, so those are refused here, at their path, with the code
/// the core gives a non-finite sample value.
fn number(x: f64, path: &str) -> Result<Value, Error> {
    if !x.is_finite() {
        return Err(Error::new(
            ErrorCode::NonFiniteValue,
            path,
            format!("{x} is not a finite number (JSON cannot carry it)"),
        ));
    }
    if x.fract() == 0.0 {
        if (0.0..TWO_POW_64).contains(&x) {
            return Ok(Value::from(x as u64));
        }
        if (-TWO_POW_63..0.0).contains(&x) {
            return Ok(Value::from(x as i64));
        }
    }
    Ok(Number::from_f64(x).map_or(Value::Null, Value::Number))
}

// ---------------------------------------------------------------------- documents

/// Prefixes an error's path with its parent's segment (`samples` + `[3].value`), as the
/// error unwinds: paths are built only for the refusal, not for every field converted.
fn within(e: Error, parent: &str) -> Error {
    let path = if e.path.is_empty() {
        parent.to_string()
    } else if e.path.starts_with('[') {
        format!("{parent}{}", e.path)
    } else {
        format!("{parent}.{}", e.path)
    };
    Error::new(e.code, path, e.message)
}

/// Converts a JS data document (plain objects, arrays, strings, numbers, booleans,
/// null) into a JSON value, as `JSON.stringify` would see it: `undefined` properties are
/// left out. Anything JSON cannot express (functions, symbols, bigints, NaN) is refused
/// at its path instead of being silently dropped or turned into `null`.
fn to_json(v: &JsValue) -> Result<Value, Error> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(x) = v.as_f64() {
        return number(x, "");
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::String(s));
    }
    if let Some(array) = v.dyn_ref::<js_sys::Array>() {
        let mut out = Vec::with_capacity(array.length() as usize);
        for (i, item) in array.iter().enumerate() {
            out.push(to_json(&item).map_err(|e| within(e, &format!("[{i}]")))?);
        }
        return Ok(Value::Array(out));
    }
    if v.is_object() && !v.is_function() {
        if let Some(typed) = v.dyn_ref::<js_sys::Float64Array>() {
            return typed
                .to_vec()
                .iter()
                .enumerate()
                .map(|(i, x)| number(*x, "").map_err(|e| within(e, &format!("[{i}]"))))
                .collect::<Result<_, _>>()
                .map(Value::Array);
        }
        let mut out = Map::new();
        for entry in js_sys::Object::entries(v.unchecked_ref()).iter() {
            let entry: js_sys::Array = entry.unchecked_into();
            let key = entry.get(0).as_string().unwrap_or_default();
            let value = entry.get(1);
            if value.is_undefined() {
                continue;
            }
            // The key's segment as the core writes it (`a.b` is `["a.b"]`).
            let value = to_json(&value).map_err(|e| within(e, &rollguard::key_path("", &key)))?;
            out.insert(key, value);
        }
        return Ok(Value::Object(out));
    }
    let what = v.js_typeof().as_string().unwrap_or_default();
    Err(invalid(
        "",
        format!("a {what} cannot appear in a JSON document"),
    ))
}

thread_local! {
    /// The property names of a sample, as JS strings made once.
    static SAMPLE_KEYS: [JsValue; 9] =
        ["at", "arm", "metric", "value", "events", "total", "tenant", "tier", "agent"]
            .map(JsValue::from_str);
}

/// The sample a plain, well-typed sample object denotes, read without building a JSON
/// value first (the per-object path of `observe` is dominated by conversion). It answers
/// only when the object is exactly what the JSON route would parse into this `Sample`: its
/// own keys are sample fields, `at` is a non-negative integer, names and labels are
/// strings, `value` a number, counts integers. Anything else returns `None` and takes the
/// JSON route, whose refusal then carries the core's code and path.
fn plain_sample(v: &JsValue) -> Option<Sample> {
    if !v.is_object() || v.is_function() || js_sys::Array::is_array(v) {
        return None;
    }
    let own = js_sys::Object::keys(v.unchecked_ref::<js_sys::Object>()).length();
    SAMPLE_KEYS.with(|keys| {
        let mut present = 0;
        let mut get = |i: usize| {
            let x = js_sys::Reflect::get(v, &keys[i]).unwrap_or(JsValue::UNDEFINED);
            if !x.is_undefined() {
                present += 1;
            }
            x
        };
        let (at, arm, metric) = (get(0), get(1), get(2));
        let (value, events, total) = (get(3), get(4), get(5));
        let (tenant, tier, agent) = (get(6), get(7), get(8));
        // Numbers the core reads as it would from JSON; anything else takes the slow path.
        let count = |x: &JsValue| match x.as_f64() {
            Some(n) => rollguard::count_from_number(n, "").ok().map(Some),
            None if x.is_undefined() => Some(None),
            None => None,
        };
        let label = |x: &JsValue| match x.as_string() {
            Some(s) => Some(Some(s)),
            None if x.is_undefined() => Some(None),
            None => None,
        };
        let at = rollguard::time_from_number(at.as_f64()?, "").ok()?;
        let value = match value.as_f64() {
            Some(x) => Some(x),
            None if value.is_undefined() => None,
            None => return None,
        };
        let sample = Sample {
            at,
            arm: arm.as_string()?,
            metric: metric.as_string()?,
            value,
            events: count(&events)?,
            total: count(&total)?,
            tenant: label(&tenant)?,
            tier: label(&tier)?,
            agent: label(&agent)?,
        };
        (present == own).then_some(sample)
    })
}

// Most steps are empty (a sample that fires no timer): building that object in JS
// costs a tenth of serializing it and parsing the text back.
#[wasm_bindgen(
    inline_js = "export function empty_step(at) { return { at, decisions: [], events: [] }; }"
)]
extern "C" {
    fn empty_step(at: f64) -> JsValue;
}

/// A step as its canonical JSON object.
fn step_js(step: &Step) -> JsResult<JsValue> {
    if step.is_empty() {
        // `at` never exceeds 2^53 - 1, so the number is exact.
        return Ok(empty_step(step.at as f64));
    }
    to_js(step)
}

/// The core's canonical JSON of `value`, parsed into JS by `JSON.parse`.
fn to_js<T: Serialize>(value: &T) -> JsResult<JsValue> {
    let text = serde_json::to_string(value).map_err(|e| JsValue::from(e.to_string()))?;
    js_sys::JSON::parse(&text)
}

fn config_from(config: &JsValue) -> Result<PolicyConfig, Error> {
    PolicyConfig::from_value(to_json(config)?)
}

fn input_from(input: &JsValue) -> Result<Input, Error> {
    Input::from_value(to_json(input)?)
}

fn start_time(start: Option<f64>) -> Result<u64, Error> {
    start.map_or(Ok(0), |s| time(s, "now"))
}

// ---------------------------------------------------------------------- labels

/// A label column converted: codes and categories.
type LabelColumn = (Vec<i32>, Vec<String>);

/// The label columns (`tenant`, `tier`, `agent`) of `observeMany` / `observeCounts`;
/// `None` without any.
fn label_columns(v: &JsValue) -> Result<Option<[Option<LabelColumn>; 3]>, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if !v.is_object() || v.is_function() {
        return Err(invalid(
            "labels",
            "expected {tenant, tier, agent} label columns",
        ));
    }
    let column = |name: &str| {
        let c = js_sys::Reflect::get(v, &name.into()).unwrap_or(JsValue::UNDEFINED);
        if c.is_undefined() || c.is_null() {
            return Ok(None);
        }
        label_column(&c, name).map(Some)
    };
    let columns = [column("tenant")?, column("tier")?, column("agent")?];
    Ok(columns.iter().any(Option::is_some).then_some(columns))
}

/// One label column: an array of strings (`null` / `undefined`: none), encoded here, or
/// `{codes, categories}`.
fn label_column(v: &JsValue, name: &str) -> Result<LabelColumn, Error> {
    if let Some(array) = v.dyn_ref::<js_sys::Array>() {
        let mut labels = Vec::with_capacity(array.length() as usize);
        for (i, item) in array.iter().enumerate() {
            if item.is_undefined() || item.is_null() {
                labels.push(None);
                continue;
            }
            let s = item.as_string().ok_or_else(|| {
                invalid(
                    &format!("{name}[{i}]"),
                    "expected a string, null or undefined",
                )
            })?;
            labels.push(Some(s));
        }
        let encoded = rollguard::LabelCodes::encode(labels).map_err(|e| within(e, name))?;
        return Ok((encoded.codes, encoded.categories));
    }
    if !v.is_object() || v.is_function() {
        return Err(invalid(
            name,
            "expected an array of labels or {codes, categories}",
        ));
    }
    let get = |key: &str| js_sys::Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let (codes, categories) = (get("codes"), get("categories"));
    let codes = if let Some(c) = codes.dyn_ref::<js_sys::Int32Array>() {
        c.to_vec()
    } else if let Some(c) = codes.dyn_ref::<js_sys::Uint32Array>() {
        // 0xFFFFFFFF is -1 (none) seen unsigned; other codes above 2^31 - 1 index no
        // category.
        c.to_vec()
            .into_iter()
            .enumerate()
            .map(|(i, c)| match i32::try_from(c) {
                Ok(c) => Ok(c),
                Err(_) if c == u32::MAX => Ok(-1),
                Err(_) => Err(Error::new(
                    ErrorCode::InvalidValue,
                    format!("{name}[{i}]"),
                    format!("code {c} is the index of no category"),
                )),
            })
            .collect::<Result<_, _>>()?
    } else if let Some(c) = codes.dyn_ref::<js_sys::Array>() {
        c.iter()
            .enumerate()
            .map(|(i, c)| {
                c.as_f64()
                    .filter(|x| x.fract() == 0.0 && (-2_147_483_648.0..2_147_483_648.0).contains(x))
                    .map(|x| x as i32)
                    .ok_or_else(|| invalid(&format!("{name}[{i}]"), "expected an integer code"))
            })
            .collect::<Result<_, _>>()?
    } else {
        return Err(invalid(
            &format!("{name}.codes"),
            "expected an Int32Array, a Uint32Array or an array of integers",
        ));
    };
    let categories = categories
        .dyn_ref::<js_sys::Array>()
        .ok_or_else(|| {
            invalid(
                &format!("{name}.categories"),
                "expected an array of strings",
            )
        })?
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_string()
                .ok_or_else(|| invalid(&format!("{name}.categories[{i}]"), "expected a string"))
        })
        .collect::<Result<_, _>>()?;
    Ok((codes, categories))
}

/// The core's view of converted label columns.
fn core_labels(c: &[Option<LabelColumn>; 3]) -> rollguard::Labels<'_, String> {
    let column = |k: usize| {
        c[k].as_ref()
            .map(|(codes, cats)| rollguard::LabelColumn::new(codes, cats))
    };
    rollguard::Labels {
        tenant: column(0),
        tier: column(1),
        agent: column(2),
    }
}

// ---------------------------------------------------------------------- Policy

/// A rollback policy (see the crate docs of `rollguard`). Every method that takes an
/// input either applies it completely and returns its `Step`, or throws a
/// `RollguardError` and leaves the policy exactly as it was.
#[wasm_bindgen(js_name = Policy)]
pub struct JsPolicy {
    inner: Policy,
}

#[wasm_bindgen(js_class = Policy)]
impl JsPolicy {
    /// Creates a policy from a config object at time `start` (ms, default 0).
    ///
    /// # Errors
    /// A config error with the field's path, or `time_out_of_range` for `start`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "PolicyConfig")] config: JsValue,
        start: Option<f64>,
    ) -> JsResult<JsPolicy> {
        let run = || Policy::new(config_from(&config)?, start_time(start)?);
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Creates a policy from a config's JSON text at time `start` (ms, default 0).
    ///
    /// # Errors
    /// `invalid_json` or a config error, with the field's path.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(text: &str, start: Option<f64>) -> JsResult<JsPolicy> {
        let run = || Policy::from_json(text, start_time(start)?);
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Recreates a policy from a snapshot object; it continues exactly as the original.
    ///
    /// # Errors
    /// `unsupported_format_version`, a config error or `snapshot_corrupt`.
    pub fn restore(
        #[wasm_bindgen(unchecked_param_type = "Snapshot")] snapshot: JsValue,
    ) -> JsResult<JsPolicy> {
        let run = || {
            let value = to_json(&snapshot)
                .map_err(|e| Error::new(ErrorCode::SnapshotCorrupt, e.path, e.message))?;
            Policy::restore(Snapshot::from_value(value)?)
        };
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Recreates a policy from a snapshot's JSON text (what `snapshotJson()` returns).
    ///
    /// # Errors
    /// As `restore`.
    #[wasm_bindgen(js_name = restoreJson)]
    pub fn restore_json(text: &str) -> JsResult<JsPolicy> {
        Policy::restore_json(text)
            .map(|inner| Self { inner })
            .map_err(|e| js_error(&e))
    }

    /// Applies any input object (`{kind: "tick", at: 5000}`, a sample, a command, an ack).
    ///
    /// # Errors
    /// An input error; the policy is unchanged.
    #[wasm_bindgen(unchecked_return_type = "Step")]
    pub fn handle(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Input")] input: JsValue,
    ) -> JsResult<JsValue> {
        let step = input_from(&input)
            .and_then(|i| self.inner.handle(&i))
            .map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// Parses one input from its canonical JSON text and applies it.
    ///
    /// # Errors
    /// `invalid_json` or an input error; the policy is unchanged.
    #[wasm_bindgen(js_name = handleJson, unchecked_return_type = "Step")]
    pub fn handle_json(&mut self, text: &str) -> JsResult<JsValue> {
        let step = self.inner.handle_json(text).map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// Applies an operator command or an acknowledgement (`{kind: "pause", at}`,
    /// `{kind: "revert_now", at, target: "golden"}`, `{kind: "ack", at, action_id}`).
    /// The same as `handle`, typed for commands.
    ///
    /// # Errors
    /// `invalid_command`, `action_pending`, `breaker_open`, ...; the policy is unchanged.
    #[wasm_bindgen(unchecked_return_type = "Step")]
    pub fn command(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Command")] command: JsValue,
    ) -> JsResult<JsValue> {
        self.handle(command)
    }

    /// Records one sample (`{at, arm, metric, value}` or `{at, arm, metric, events, total}`).
    ///
    /// # Errors
    /// A sample error (`non_finite_value`, `unknown_arm`, ...); the policy is unchanged.
    #[wasm_bindgen(unchecked_return_type = "Step")]
    pub fn observe(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Sample")] sample: JsValue,
    ) -> JsResult<JsValue> {
        let mut run = || {
            if let Some(fast) = plain_sample(&sample) {
                return self.inner.observe(&fast);
            }
            let mut value = to_json(&sample)?;
            match &mut value {
                Value::Object(map) => {
                    map.insert("kind".into(), Value::String("observe".into()));
                }
                _ => return Err(invalid("", "a sample must be an object")),
            }
            self.inner.handle(&Input::from_value(value)?)
        };
        let step = run().map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// Records a column of value samples of one metric on one arm, atomically: if any
    /// is refused, none is recorded. `at` must not decrease. Errors name the row
    /// (`value[3]`, `at[0]`).
    ///
    /// # Errors
    /// The first sample error; the policy is unchanged.
    ///
    /// `labels` holds label columns (`{tenant, tier, agent}`), one label per row: an
    /// array of strings (`null` or `undefined`: none), or `{codes, categories}` with
    /// codes an `Int32Array` (or `Uint32Array`, or array of numbers) indexing
    /// `categories` (-1: none). The result is that of `observe` of each row with its
    /// labels.
    #[wasm_bindgen(js_name = observeMany, unchecked_return_type = "Step")]
    pub fn observe_many(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        values: &[f64],
        #[wasm_bindgen(unchecked_optional_param_type = "LabelColumns")] labels: JsValue,
    ) -> JsResult<JsValue> {
        // The times go to the core as the numbers they are: it checks them in the same
        // vectorized pass as the rest of the column.
        let mut run = || match label_columns(&labels)? {
            None => self.inner.observe_values_f64(arm, metric, at, values),
            Some(c) => {
                let labels = core_labels(&c);
                self.inner
                    .observe_values_f64_labelled(arm, metric, at, values, &labels)
            }
        };
        let step = run().map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// Records a column of count samples (`events[i]` out of `totals[i]`) of one metric
    /// on one arm, atomically, as `observeMany` does.
    ///
    /// # Errors
    /// The first sample error (`events[3]`, `total[3]`, ...); the policy is unchanged.
    #[wasm_bindgen(js_name = observeCounts, unchecked_return_type = "Step")]
    pub fn observe_counts(
        &mut self,
        arm: &str,
        metric: &str,
        at: &[f64],
        events: &[f64],
        totals: &[f64],
        #[wasm_bindgen(unchecked_optional_param_type = "LabelColumns")] labels: JsValue,
    ) -> JsResult<JsValue> {
        // Times and counts go to the core as the numbers they are (as for observeMany).
        let mut run = || match label_columns(&labels)? {
            None => self
                .inner
                .observe_counts_f64(arm, metric, at, events, totals),
            Some(c) => {
                let labels = core_labels(&c);
                self.inner
                    .observe_counts_f64_labelled(arm, metric, at, events, totals, &labels)
            }
        };
        let step = run().map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// Time passes: fires every timer due at or before `now` (ms).
    ///
    /// # Errors
    /// `time_went_backwards` or `time_out_of_range`; the policy is unchanged.
    #[wasm_bindgen(unchecked_return_type = "Step")]
    pub fn tick(&mut self, now: f64) -> JsResult<JsValue> {
        let step = time(now, "at")
            .and_then(|t| self.inner.tick(t))
            .map_err(|e| js_error(&e))?;
        step_js(&step)
    }

    /// When the policy next needs a `tick` (ms), or `null` if never.
    #[wasm_bindgen(js_name = nextDeadline, unchecked_return_type = "number | null")]
    pub fn next_deadline(&self) -> JsValue {
        // Deadlines never exceed TIME_MAX (2^53 - 1), so the number is exact.
        self.inner
            .next_deadline()
            .map_or(JsValue::NULL, |t| JsValue::from_f64(t.min(TIME_MAX) as f64))
    }

    /// The policy's current time (ms): the latest input's.
    #[wasm_bindgen(getter)]
    pub fn now(&self) -> f64 {
        self.inner.now() as f64
    }

    /// The aliases and the state of the rollout, breaker and cooldown.
    #[wasm_bindgen(unchecked_return_type = "Status")]
    pub fn status(&self) -> JsResult<JsValue> {
        to_js(&self.inner.status())
    }

    /// Where a routing key goes now (docs/assignment.md): `{arm, version, reason,
    /// weight_bp, salt?, pinned}`. With `sessionStartedAt` (ms), the session keeps the
    /// weight in effect when it started for `assignment.pin_max_ms`, asked at `now`
    /// (ms; default the policy's time). A query: it changes nothing.
    ///
    /// # Errors
    /// `invalid_value` (a session that starts after `now`), `time_out_of_range`, or
    /// `invalid_json` (a key that is neither a string nor bytes, a time that is not an
    /// integer number of ms).
    #[wasm_bindgen(js_name = assign, unchecked_return_type = "Assignment")]
    pub fn assign_key(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
        #[wasm_bindgen(js_name = sessionStartedAt)] session_started_at: Option<f64>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let a = (|| {
            let key = key_bytes(&key)?;
            let started = session_started_at
                .map(|t| time(t, "session_started_at"))
                .transpose()?;
            let now = now.map(|t| time(t, "now")).transpose()?;
            self.inner.assign_maybe_pinned(&key, started, now)
        })()
        .map_err(|e| js_error(&e))?;
        to_js(&a)
    }

    /// Everything a router needs to answer `assign` itself, for any key and session
    /// (docs/assignment.md): `{mode, stable, candidate?, salt?, weight_bp, weights,
    /// pin_max_ms}`. A query: it changes nothing.
    #[wasm_bindgen(js_name = routingTable, unchecked_return_type = "RoutingTable")]
    pub fn routing_table(&self) -> JsResult<JsValue> {
        to_js(&self.inner.routing_table())
    }

    /// The registered versions.
    #[wasm_bindgen(unchecked_return_type = "Version[]")]
    pub fn versions(&self) -> JsResult<JsValue> {
        to_js(&self.inner.versions())
    }

    /// The policy's config, as a plain object.
    #[wasm_bindgen(unchecked_return_type = "PolicyConfig")]
    pub fn config(&self) -> JsResult<JsValue> {
        to_js(self.inner.config())
    }

    /// A snapshot of the whole state, as a plain object (`Policy.restore` takes it back).
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
    pub fn snapshot(&self) -> JsResult<JsValue> {
        to_js(&self.inner.snapshot())
    }

    /// The snapshot's canonical JSON text: store this to restore exactly, in any binding.
    #[wasm_bindgen(js_name = snapshotJson)]
    pub fn snapshot_json(&self) -> String {
        self.inner.snapshot().to_json()
    }

    /// The snapshot, for `JSON.stringify(policy)`.
    #[wasm_bindgen(js_name = toJSON, unchecked_return_type = "Snapshot")]
    pub fn to_json(&self) -> JsResult<JsValue> {
        self.snapshot()
    }
}

// ---------------------------------------------------------------------- agents

/// Per-agent policies (README "Per-agent versions"): one policy per agent, each with its
/// own versions, rollout, gates, cooldown and breaker. Inputs are the policy's with an
/// optional `agent` key; every input returns `{at, agents: [{agent, step}]}`, the agents
/// with something to say, in name order.
#[wasm_bindgen(js_name = Agents)]
pub struct JsAgents {
    inner: Agents,
}

#[wasm_bindgen(js_class = Agents)]
impl JsAgents {
    /// Creates every agent's policy from an agents config object at time `start` (ms,
    /// default 0).
    ///
    /// # Errors
    /// A config error with the field's path (`agents.<agent>....` inside an agent's
    /// merged config), or `time_out_of_range` for `start`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "AgentsConfig")] config: JsValue,
        start: Option<f64>,
    ) -> JsResult<JsAgents> {
        let run = || {
            Agents::new(
                AgentsConfig::from_value(to_json(&config)?)?,
                start_time(start)?,
            )
        };
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Creates the agents from a config's JSON text at time `start` (ms, default 0).
    ///
    /// # Errors
    /// `invalid_json` or a config error, with the field's path.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(text: &str, start: Option<f64>) -> JsResult<JsAgents> {
        let run = || Agents::from_json(text, start_time(start)?);
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Recreates the agents from a snapshot object.
    ///
    /// # Errors
    /// `unsupported_format_version`, a config error or `snapshot_corrupt`.
    pub fn restore(
        #[wasm_bindgen(unchecked_param_type = "AgentsSnapshot")] snapshot: JsValue,
    ) -> JsResult<JsAgents> {
        let run = || {
            let value = to_json(&snapshot)
                .map_err(|e| Error::new(ErrorCode::SnapshotCorrupt, e.path, e.message))?;
            Agents::restore(AgentsSnapshot::from_value(value)?)
        };
        run().map(|inner| Self { inner }).map_err(|e| js_error(&e))
    }

    /// Recreates the agents from a snapshot's JSON text (what `snapshotJson()` returns).
    ///
    /// # Errors
    /// As `restore`.
    #[wasm_bindgen(js_name = restoreJson)]
    pub fn restore_json(text: &str) -> JsResult<JsAgents> {
        Agents::restore_json(text)
            .map(|inner| Self { inner })
            .map_err(|e| js_error(&e))
    }

    /// Applies any input object with an optional `agent`: a sample goes to the agent of
    /// its `agent` label, `ack` and `action_failed` name their agent, any other command
    /// without one goes to every agent, atomically.
    ///
    /// # Errors
    /// `unknown_agent`, or an input error; no agent changes.
    #[wasm_bindgen(unchecked_return_type = "AgentsStep")]
    pub fn handle(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "AgentInput")] input: JsValue,
    ) -> JsResult<JsValue> {
        let step = to_json(&input)
            .and_then(AgentInput::from_value)
            .and_then(|i| self.inner.handle(&i))
            .map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// Parses one input from its canonical JSON text and applies it.
    ///
    /// # Errors
    /// As `handle`.
    #[wasm_bindgen(js_name = handleJson, unchecked_return_type = "AgentsStep")]
    pub fn handle_json(&mut self, text: &str) -> JsResult<JsValue> {
        let step = self.inner.handle_json(text).map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// A command (`{kind: "ack", at, action_id, agent}`); the same as `handle`.
    ///
    /// # Errors
    /// As `handle`.
    #[wasm_bindgen(unchecked_return_type = "AgentsStep")]
    pub fn command(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "AgentInput")] command: JsValue,
    ) -> JsResult<JsValue> {
        self.handle(command)
    }

    /// Records one sample; it goes to the agent of its `agent` label.
    ///
    /// # Errors
    /// As `handle`.
    #[wasm_bindgen(unchecked_return_type = "AgentsStep")]
    pub fn observe(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Sample")] sample: JsValue,
    ) -> JsResult<JsValue> {
        let run = || {
            let mut value = to_json(&sample)?;
            match &mut value {
                Value::Object(map) => {
                    map.insert("kind".into(), Value::String("observe".into()));
                }
                _ => return Err(invalid("", "a sample must be an object")),
            }
            AgentInput::from_value(value)
        };
        let step = run()
            .and_then(|i| self.inner.handle(&i))
            .map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// Records a column of value samples of one metric on one arm of `agent`,
    /// atomically, as `Policy.observeMany` does (`labels`: tenant and tier columns; an
    /// agent column must name `agent`). The result is that of `observe` of each row for
    /// that agent: the other agents fire their timers at the rows' times as they fall
    /// due.
    ///
    /// # Errors
    /// `unknown_agent`, or the first sample error naming its row (`value[3]`); no
    /// agent changes.
    #[wasm_bindgen(js_name = observeMany, unchecked_return_type = "AgentsStep")]
    pub fn observe_many(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[f64],
        values: &[f64],
        #[wasm_bindgen(unchecked_optional_param_type = "LabelColumns")] labels: JsValue,
    ) -> JsResult<JsValue> {
        let mut run = || {
            let columns = label_columns(&labels)?.unwrap_or_default();
            let labels = core_labels(&columns);
            self.inner
                .observe_values_f64(agent, arm, metric, at, values, &labels)
        };
        let step = run().map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// Records a column of count samples (`events[i]` out of `totals[i]`) for `agent`,
    /// as `observeMany` does.
    ///
    /// # Errors
    /// As `observeMany` (`events[3]`, `total[3]`, ...).
    #[wasm_bindgen(js_name = observeCounts, unchecked_return_type = "AgentsStep")]
    #[allow(clippy::too_many_arguments)] // one argument per column, as Policy's
    pub fn observe_counts(
        &mut self,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &[f64],
        events: &[f64],
        totals: &[f64],
        #[wasm_bindgen(unchecked_optional_param_type = "LabelColumns")] labels: JsValue,
    ) -> JsResult<JsValue> {
        let mut run = || {
            let columns = label_columns(&labels)?.unwrap_or_default();
            let labels = core_labels(&columns);
            self.inner
                .observe_counts_f64(agent, arm, metric, at, events, totals, &labels)
        };
        let step = run().map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// Time passes: every agent fires its timers due at or before `now` (ms).
    ///
    /// # Errors
    /// `time_went_backwards` or `time_out_of_range`; no agent changes.
    #[wasm_bindgen(unchecked_return_type = "AgentsStep")]
    pub fn tick(&mut self, now: f64) -> JsResult<JsValue> {
        let step = time(now, "at")
            .and_then(|t| self.inner.tick(t))
            .map_err(|e| js_error(&e))?;
        to_js(&step)
    }

    /// When some agent next needs a `tick` (ms), or `null` if never.
    #[wasm_bindgen(js_name = nextDeadline, unchecked_return_type = "number | null")]
    pub fn next_deadline(&self) -> JsValue {
        self.inner
            .next_deadline()
            .map_or(JsValue::NULL, |t| JsValue::from_f64(t.min(TIME_MAX) as f64))
    }

    /// The agents' time (ms): the latest input's.
    #[wasm_bindgen(getter)]
    pub fn now(&self) -> f64 {
        self.inner.now() as f64
    }

    /// The agents' names, in order.
    #[wasm_bindgen(getter, unchecked_return_type = "string[]")]
    pub fn agents(&self) -> JsResult<JsValue> {
        to_js(&self.inner.agents().collect::<Vec<_>>())
    }

    /// Every agent's status, by agent.
    #[wasm_bindgen(unchecked_return_type = "Record<string, Status>")]
    pub fn status(&self) -> JsResult<JsValue> {
        to_js(&self.inner.status())
    }

    /// Where a routing key of `agent` goes now (`Policy.assign` of its policy).
    ///
    /// # Errors
    /// `unknown_agent`, or as `Policy.assign`.
    #[wasm_bindgen(unchecked_return_type = "Assignment")]
    pub fn assign(
        &self,
        agent: &str,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
        #[wasm_bindgen(js_name = sessionStartedAt)] session_started_at: Option<f64>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let a = (|| {
            let key = key_bytes(&key)?;
            let started = session_started_at
                .map(|t| time(t, "session_started_at"))
                .transpose()?;
            let now = now.map(|t| time(t, "now")).transpose()?;
            self.inner.assign_maybe_pinned(agent, &key, started, now)
        })()
        .map_err(|e| js_error(&e))?;
        to_js(&a)
    }

    /// `agent`'s routing table (`Policy.routingTable` of its policy).
    ///
    /// # Errors
    /// `unknown_agent`.
    #[wasm_bindgen(js_name = routingTable, unchecked_return_type = "RoutingTable")]
    pub fn routing_table(&self, agent: &str) -> JsResult<JsValue> {
        let table = self.inner.routing_table(agent).map_err(|e| js_error(&e))?;
        to_js(&table)
    }

    /// The agents config, as a plain object.
    #[wasm_bindgen(unchecked_return_type = "AgentsConfig")]
    pub fn config(&self) -> JsResult<JsValue> {
        to_js(self.inner.config())
    }

    /// A snapshot of every agent with the config, as a plain object.
    #[wasm_bindgen(unchecked_return_type = "AgentsSnapshot")]
    pub fn snapshot(&self) -> JsResult<JsValue> {
        to_js(&self.inner.snapshot())
    }

    /// The snapshot's canonical JSON text.
    #[wasm_bindgen(js_name = snapshotJson)]
    pub fn snapshot_json(&self) -> String {
        self.inner.snapshot().to_json()
    }

    /// The snapshot, for `JSON.stringify(agents)`.
    #[wasm_bindgen(js_name = toJSON, unchecked_return_type = "AgentsSnapshot")]
    pub fn to_json(&self) -> JsResult<JsValue> {
        self.snapshot()
    }
}

// ---------------------------------------------------------------------- replay

/// Replays a scenario object (`{format_version, config, start?, inputs}`) into its
/// trace: one entry per input, with its step or its refusal.
///
/// # Errors
/// `invalid_json` or `unsupported_format_version` for the scenario, or a config error.
#[wasm_bindgen(unchecked_return_type = "TraceEntry[]")]
pub fn replay(
    #[wasm_bindgen(unchecked_param_type = "Scenario")] scenario: JsValue,
) -> JsResult<JsValue> {
    let trace = to_json(&scenario)
        .and_then(Scenario::from_value)
        .and_then(|s| rollguard::replay(&s))
        .map_err(|e| js_error(&e))?;
    to_js(&trace)
}

/// Replays a scenario from its JSON text, as `rollguard replay` does.
///
/// # Errors
/// As `replay`.
#[wasm_bindgen(js_name = replayJson, unchecked_return_type = "TraceEntry[]")]
pub fn replay_json(text: &str) -> JsResult<JsValue> {
    let trace = Scenario::from_json(text)
        .and_then(|s| rollguard::replay(&s))
        .map_err(|e| js_error(&e))?;
    to_js(&trace)
}

/// Converts a Kayenta canary config (an object or its JSON text) into rollguard pieces:
/// `{metrics, gates, warnings}`, a value metric and a dry-run `mann_whitney` gate per
/// Kayenta metric and a `kayenta_score` gate. The binding only converts: the core reads.
///
/// # Errors
/// A value rollguard cannot carry over, with its code and path.
#[wasm_bindgen(js_name = importKayenta, unchecked_return_type = "KayentaImport")]
pub fn import_kayenta(
    #[wasm_bindgen(unchecked_param_type = "object | string")] config: JsValue,
) -> JsResult<JsValue> {
    let text = match config.as_string() {
        Some(text) => text,
        None => to_json(&config).map_err(|e| js_error(&e))?.to_string(),
    };
    let imported = rollguard::import_kayenta(&text).map_err(|e| js_error(&e))?;
    to_js(&imported)
}

// ---------------------------------------------------------------------- assignment

/// A routing key's bytes: a string is its UTF-8 bytes, a `Uint8Array` itself. A string
/// with a lone surrogate has no UTF-8 bytes and is refused as `invalid_json`, as the JSON
/// parser refuses it in a document (wasm-bindgen would otherwise replace it with U+FFFD
/// and hash another key).
fn key_bytes(key: &JsValue) -> Result<Vec<u8>, Error> {
    if let Some(bytes) = key.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    match key.dyn_ref::<js_sys::JsString>() {
        Some(s) if s.is_valid_utf16() => Ok(String::from(s).into_bytes()),
        Some(_) => Err(invalid(
            "key",
            "a key string with a lone surrogate has no UTF-8 bytes; pass a Uint8Array",
        )),
        None => Err(invalid("key", "a key is a string or a Uint8Array")),
    }
}

fn salt_of(salt: &JsValue) -> Result<rollguard::Salt, Error> {
    match salt.as_string() {
        Some(text) => rollguard::Salt::from_hex(&text),
        None => Err(Error::new(
            ErrorCode::InvalidSalt,
            "salt",
            "a salt is a string of 16 lowercase hex digits",
        )),
    }
}

/// The arm of a routing key (`rollguard-assign-v1`, docs/assignment.md): `"candidate"`
/// iff the key's bucket under `salt` is below `weightBp`, the candidate's share in basis
/// points (percent × 100, 0..=10000). `key` is a string (its UTF-8 bytes) or a
/// `Uint8Array`; `salt` is 16 lowercase hex digits.
///
/// # Errors
/// `invalid_salt`, `weight_out_of_range`, or `invalid_json` (a fractional weight, a key
/// that is neither a string nor bytes).
#[wasm_bindgen(unchecked_return_type = "Arm")]
pub fn assign(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] salt: JsValue,
    #[wasm_bindgen(js_name = weightBp, unchecked_param_type = "number")] weight_bp: JsValue,
) -> JsResult<JsValue> {
    let arm = (|| {
        let key = key_bytes(&key)?;
        let salt = salt_of(&salt)?;
        let weight = match weight_bp.as_f64() {
            Some(x) => rollguard::weight_bp_from_number(x)?,
            None => return Err(invalid("weight_bp", "a weight is a number of basis points")),
        };
        rollguard::assign(salt, &key, weight)
    })()
    .map_err(|e| js_error(&e))?;
    Ok(arm.as_str().into())
}

/// The bucket of a routing key under `salt`, in 0..=9999: the key is on the candidate
/// while the weight in basis points is above it.
///
/// # Errors
/// `invalid_salt`, or `invalid_json` for a key that is neither a string nor bytes.
#[wasm_bindgen(js_name = assignBucket)]
pub fn assign_bucket(
    #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] key: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] salt: JsValue,
) -> JsResult<u32> {
    let key = key_bytes(&key).map_err(|e| js_error(&e))?;
    let salt = salt_of(&salt).map_err(|e| js_error(&e))?;
    Ok(rollguard::bucket(salt, &key))
}

/// A rollout's salt, derived from the policy's name, the candidate version's id and the
/// rollout's sequence number (a number below 2^53, or a bigint up to 2^64 − 1), as 16
/// lowercase hex digits.
///
/// # Errors
/// `invalid_json` for a negative or fractional sequence number, a name with a lone
/// surrogate; `count_out_of_range` for a number from 2^53 (pass a bigint).
#[wasm_bindgen(js_name = saltFor)]
pub fn salt_for(
    #[wasm_bindgen(js_name = policyName, unchecked_param_type = "string")] policy_name: JsValue,
    #[wasm_bindgen(js_name = versionId, unchecked_param_type = "string")] version_id: JsValue,
    #[wasm_bindgen(js_name = rolloutSeq, unchecked_param_type = "number | bigint")]
    rollout_seq: JsValue,
) -> JsResult<String> {
    let text = |v: &JsValue, path: &str| match v.dyn_ref::<js_sys::JsString>() {
        Some(s) if s.is_valid_utf16() => Ok(String::from(s)),
        _ => Err(invalid(path, "a string without lone surrogates")),
    };
    (|| {
        let name = text(&policy_name, "policy_name")?;
        let version = text(&version_id, "version_id")?;
        let seq = if rollout_seq.is_bigint() {
            u64::try_from(rollout_seq.clone())
                .map_err(|_| invalid("rollout_seq", "a bigint rollout_seq is in 0..=2^64-1"))?
        } else {
            match rollout_seq.as_f64() {
                Some(x) => rollguard::rollout_seq_from_number(x)?,
                None => return Err(invalid("rollout_seq", "a number or a bigint")),
            }
        };
        Ok(rollguard::salt_for(&name, &version, seq).to_hex())
    })()
    .map_err(|e| js_error(&e))
}

/// The name of the assignment function, `"rollguard-assign-v1"`.
#[wasm_bindgen(js_name = assignVersion)]
pub fn assign_version() -> String {
    rollguard::ASSIGN_VERSION.to_string()
}

/// The schema version of configs, inputs, steps and scenarios this build reads and writes.
#[wasm_bindgen(js_name = formatVersion)]
pub fn format_version() -> u32 {
    rollguard::FORMAT_VERSION
}

/// The snapshot format this build writes; it restores every format from 1 up to it.
#[wasm_bindgen(js_name = snapshotFormatVersion)]
pub fn snapshot_format_version() -> u32 {
    rollguard::SNAPSHOT_FORMAT_VERSION
}
