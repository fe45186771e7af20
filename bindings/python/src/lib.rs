//! Python bindings of rollguard, built by maturin as `rollguard._rollguard`.
//!
//! Everything here is conversion: Python objects become `serde_json::Value`s that the
//! core's `from_value` functions read (so error codes and paths are the core's), and the
//! core's outputs become frozen Python objects. No decision is taken here.

use std::panic::{AssertUnwindSafe, catch_unwind};

use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use rollguard as rg;
use serde_json::{Map, Number, Value};

// ------------------------------------------------------------------------ errors

/// Which API refused something; decides the exception class.
#[derive(Clone, Copy)]
enum Api {
    Config,
    Input,
    Snapshot,
}

/// The exception classes, made once per interpreter with `type(name, bases, ns)` so that
/// `ConfigError` and friends subclass both `RollguardError` and `ValueError`.
struct Errors {
    base: Py<PyType>,
    config: Py<PyType>,
    input: Py<PyType>,
    snapshot: Py<PyType>,
}

static ERRORS: PyOnceLock<Errors> = PyOnceLock::new();

fn errors(py: Python<'_>) -> PyResult<&Errors> {
    ERRORS.get_or_try_init(py, || {
        let type_ = py.import("builtins")?.getattr("type")?;
        let make = |name: &str, bases: Bound<'_, PyTuple>, doc: &str| -> PyResult<Py<PyType>> {
            let ns = PyDict::new(py);
            ns.set_item("__module__", "rollguard")?;
            ns.set_item("__doc__", doc)?;
            // Defaults, so that an exception built by hand still has the attributes.
            ns.set_item("code", "")?;
            ns.set_item("path", "")?;
            ns.set_item("message", "")?;
            Ok(type_
                .call1((name, bases, ns))?
                .cast_into::<PyType>()?
                .unbind())
        };
        let exception = py.get_type::<pyo3::exceptions::PyException>();
        let value_error = py.get_type::<pyo3::exceptions::PyValueError>();
        let base = make(
            "RollguardError",
            PyTuple::new(py, [exception])?,
            "A refusal by rollguard, with the core's stable `.code` and the field `.path`.",
        )?;
        let sub = |name: &str, doc: &str| {
            make(
                name,
                PyTuple::new(py, [base.bind(py).clone(), value_error.clone()])?,
                doc,
            )
        };
        Ok(Errors {
            config: sub("ConfigError", "A config (or scenario) was refused.")?,
            input: sub(
                "InputError",
                "An input (sample, tick, command) was refused.",
            )?,
            snapshot: sub("SnapshotError", "A snapshot could not be restored.")?,
            base,
        })
    })
}

/// The exception object for a core error (not raised).
fn exception<'py>(py: Python<'py>, api: Api, e: &rg::Error) -> PyResult<Bound<'py, PyAny>> {
    let errs = errors(py)?;
    let ty = match api {
        Api::Config => &errs.config,
        Api::Input => &errs.input,
        Api::Snapshot => &errs.snapshot,
    };
    let exc = ty.bind(py).call1((e.to_string(),))?;
    exc.setattr("code", e.code.as_str())?;
    exc.setattr("path", &e.path)?;
    exc.setattr("message", &e.message)?;
    Ok(exc)
}

fn raise(py: Python<'_>, api: Api, e: &rg::Error) -> PyErr {
    match exception(py, api, e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// A conversion failure, reported like the core reports a field that does not parse.
fn conv(code: rg::ErrorCode, path: impl Into<String>, message: impl Into<String>) -> rg::Error {
    rg::Error::new(code, path, message)
}

/// Runs a core call; a panic (there should be none: the core is fuzzed) becomes a
/// `RollguardError` with code `internal_error` instead of reaching Python.
fn core<T>(py: Python<'_>, api: Api, f: impl FnOnce() -> Result<T, rg::Error>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(raise(py, api, &e)),
        Err(_) => {
            let base = errors(py)?.base.bind(py);
            let exc = base.call1(("internal_error: rollguard panicked; please report it",))?;
            exc.setattr("code", "internal_error")?;
            exc.setattr("message", "rollguard panicked; please report it")?;
            Err(PyErr::from_value(exc))
        }
    }
}

// ------------------------------------------------------------------ Python -> JSON

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EPOCH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static MILLISECOND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn datetime_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DATETIME.import(py, "datetime", "datetime")
}

/// A timezone-aware `datetime` as integer milliseconds since the Unix epoch (exact:
/// `(dt - epoch) // timedelta(milliseconds=1)`). A naive datetime is refused.
fn datetime_ms(dt: &Bound<'_, PyAny>, path: &str) -> PyResult<Result<Value, rg::Error>> {
    let py = dt.py();
    if dt.call_method0("utcoffset")?.is_none() {
        return Ok(Err(conv(
            rg::ErrorCode::InvalidValue,
            path,
            "a naive datetime has no time zone; attach a tzinfo (e.g. timezone.utc)",
        )));
    }
    let epoch = EPOCH.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("datetime")?;
        let utc = m.getattr("timezone")?.getattr("utc")?;
        Ok(m.getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, utc))?
            .unbind())
    })?;
    let ms = MILLISECOND.get_or_try_init(py, || -> PyResult<_> {
        let kw = PyDict::new(py);
        kw.set_item("milliseconds", 1)?;
        Ok(py
            .import("datetime")?
            .getattr("timedelta")?
            .call((), Some(&kw))?
            .unbind())
    })?;
    let n = dt.sub(epoch.bind(py))?.floor_div(ms.bind(py))?;
    Ok(int_value(&n))
}

/// An int as a JSON number: i64/u64 exactly; beyond them a float, as serde_json reads
/// an integer literal that large (the core then refuses it where it wants an integer).
fn int_value(n: &Bound<'_, PyAny>) -> Result<Value, rg::Error> {
    if let Ok(v) = n.extract::<i64>() {
        return Ok(Value::from(v));
    }
    if let Ok(v) = n.extract::<u64>() {
        return Ok(Value::from(v));
    }
    let f = n.extract::<f64>().unwrap_or(f64::INFINITY);
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| conv(rg::ErrorCode::InvalidJson, "", "integer out of range"))
}

/// Converts a Python object into a JSON value: `bool` (before `int`), `int`, `float`,
/// `str`, `None`, `dict` with `str` keys, `list`/`tuple`, aware `datetime` (to ms), and
/// anything with `__index__` (numpy integers) or `__float__` (numpy floats).
fn to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Result<Value, rg::Error>> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Ok(Value::Null));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Ok(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(int_value(obj).map_err(|e| conv(e.code, path, e.message)));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_value(f.value(), path));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Ok(Value::String(s.to_cow()?.into_owned())));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Ok(Err(conv(
                    rg::ErrorCode::InvalidJson,
                    path,
                    format!("dict keys must be str, not {}", k.get_type().name()?),
                )));
            };
            let k = k.to_cow()?;
            match to_value(&v, &rg::key_path(path, &k))? {
                Ok(v) => map.insert(k.into_owned(), v),
                Err(e) => return Ok(Err(e)),
            };
        }
        return Ok(Ok(Value::Object(map)));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            match to_value(&item?, &format!("{path}[{i}]"))? {
                Ok(v) => out.push(v),
                Err(e) => return Ok(Err(e)),
            }
        }
        return Ok(Ok(Value::Array(out)));
    }
    if obj.is_instance(datetime_type(py)?)? {
        return datetime_ms(obj, path);
    }
    if obj.hasattr("__index__")? {
        let n = obj.call_method0("__index__")?;
        return Ok(int_value(&n).map_err(|e| conv(e.code, path, e.message)));
    }
    if obj.hasattr("__float__")? {
        return Ok(float_value(obj.extract::<f64>()?, path));
    }
    Ok(Err(conv(
        rg::ErrorCode::InvalidJson,
        path,
        format!(
            "expected a JSON-compatible value, not {}",
            obj.get_type().name()?
        ),
    )))
}

/// JSON has no NaN or infinity; a native one is reported with the core's code for it.
fn float_value(f: f64, path: &str) -> Result<Value, rg::Error> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        conv(
            rg::ErrorCode::NonFiniteValue,
            path,
            format!("{f} cannot be represented in JSON"),
        )
    })
}

fn value_of(obj: &Bound<'_, PyAny>, api: Api) -> PyResult<Value> {
    to_value(obj, "")?.map_err(|e| raise(obj.py(), api, &e))
}

/// A time argument: int milliseconds, or an aware datetime.
fn time_of(obj: &Bound<'_, PyAny>, path: &str, api: Api) -> PyResult<u64> {
    let py = obj.py();
    let value = to_value(obj, path)?.map_err(|e| raise(py, api, &e))?;
    value.as_u64().ok_or_else(|| {
        raise(
            py,
            api,
            &conv(
                rg::ErrorCode::InvalidJson,
                path,
                format!("expected a time (int ms >= 0 or an aware datetime), got {value}"),
            ),
        )
    })
}

// ------------------------------------------------------------------ JSON -> Python

fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for x in a {
                list.append(to_py(py, x)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn json_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn dict_of<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &json_of(v))
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The fields of a tagged object other than the common ones, as a dict.
fn fields<'py>(py: Python<'py>, v: &Value, common: &[&str]) -> PyResult<Bound<'py, PyAny>> {
    let mut m = v.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| !common.contains(&k.as_str()));
    to_py(py, &Value::Object(m))
}

fn compact_fields(v: &Value, skip: &[&str]) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, x)| format!(", {k}={x}"))
                .collect::<String>()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ result objects

const DECISION_COMMON: &[&str] = &[
    "at",
    "kind",
    "reason",
    "action_id",
    "ack_deadline",
    "detail",
    "gates",
];

/// One decision: what the caller should do, and why.
#[pyclass(frozen, eq, module = "rollguard", name = "Decision")]
#[derive(PartialEq)]
struct PyDecision {
    inner: rg::Decision,
}

#[pymethods]
impl PyDecision {
    /// When it was taken (ms).
    #[getter]
    fn at(&self) -> u64 {
        self.inner.at
    }
    /// The action kind (`rollback`, `set_weight`, `promote`, `hold`, `escalate`, ...).
    #[getter]
    fn kind(&self) -> String {
        str_field(&json_of(&self.inner.action), "kind").unwrap_or_default()
    }
    /// The reason code (`gate_failed`, `stage_passed`, ...).
    #[getter]
    fn reason(&self) -> String {
        json_of(&self.inner.reason)
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    }
    /// Present when the caller must execute the action and acknowledge it.
    #[getter]
    fn action_id(&self) -> Option<u64> {
        self.inner.action_id
    }
    /// Acknowledge by then.
    #[getter]
    fn ack_deadline(&self) -> Option<u64> {
        self.inner.ack_deadline
    }
    /// Free-form detail.
    #[getter]
    fn detail(&self) -> &str {
        &self.inner.detail
    }
    /// The gate reports, as dicts.
    #[getter]
    fn gates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.gates)
    }
    /// The action's own fields (`version`, `weight`, `from`, `to`, ...).
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        fields(py, &json_of(&self.inner), DECISION_COMMON)
    }
    /// The canonical JSON-shaped dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner)
    }
    /// The canonical JSON text.
    fn to_json(&self) -> String {
        json_of(&self.inner).to_string()
    }
    fn __repr__(&self) -> String {
        let v = json_of(&self.inner);
        format!(
            "Decision(kind={}, at={}, reason={}{})",
            v["kind"],
            v["at"],
            v["reason"],
            compact_fields(&v, &["kind", "at", "reason", "gates"])
        )
    }
}

/// One event: a fact, with its time.
#[pyclass(frozen, eq, module = "rollguard", name = "Event")]
#[derive(PartialEq)]
struct PyEvent {
    inner: rg::Event,
}

#[pymethods]
impl PyEvent {
    /// When (ms).
    #[getter]
    fn at(&self) -> u64 {
        self.inner.at
    }
    /// The event kind (`rolled_back`, `gate_tripped`, `analysis`, ...).
    #[getter]
    fn kind(&self) -> String {
        str_field(&json_of(&self.inner.kind), "kind").unwrap_or_default()
    }
    /// The event's own fields.
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        fields(py, &json_of(&self.inner), &["at", "kind"])
    }
    /// The canonical JSON-shaped dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner)
    }
    /// The canonical JSON text.
    fn to_json(&self) -> String {
        json_of(&self.inner).to_string()
    }
    fn __repr__(&self) -> String {
        let v = json_of(&self.inner);
        let skip = ["kind", "at", "reports"];
        format!(
            "Event(kind={}, at={}{})",
            v["kind"],
            v["at"],
            compact_fields(&v, &skip)
        )
    }
}

/// What one input produced: decisions to act on and events to log.
#[pyclass(frozen, eq, module = "rollguard", name = "Step")]
#[derive(PartialEq)]
struct PyStep {
    inner: rg::Step,
}

#[pymethods]
impl PyStep {
    /// The input's time (ms).
    #[getter]
    fn at(&self) -> u64 {
        self.inner.at
    }
    /// The decisions, in order.
    #[getter]
    fn decisions(&self) -> Vec<PyDecision> {
        self.inner
            .decisions
            .iter()
            .map(|d| PyDecision { inner: d.clone() })
            .collect()
    }
    /// The decisions that must be executed and acknowledged (they carry an `action_id`).
    #[getter]
    fn actions(&self) -> Vec<PyDecision> {
        self.inner
            .actions()
            .map(|d| PyDecision { inner: d.clone() })
            .collect()
    }
    /// The events, in order.
    #[getter]
    fn events(&self) -> Vec<PyEvent> {
        self.inner
            .events
            .iter()
            .map(|e| PyEvent { inner: e.clone() })
            .collect()
    }
    /// True when the step carries neither decisions nor events.
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// The canonical JSON-shaped dict (`at`, `decisions`, `events`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner)
    }
    /// The canonical JSON text, as the core serializes it.
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }
    fn __repr__(&self) -> String {
        let kinds = |v: Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x["kind"].as_str().unwrap_or("?").to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        format!(
            "Step(at={}, decisions=[{}], events=[{}])",
            self.inner.at,
            kinds(json_of(&self.inner.decisions)),
            kinds(json_of(&self.inner.events))
        )
    }
}

/// One line of a replay trace: the input and its step, or the refusal.
#[pyclass(frozen, eq, module = "rollguard", name = "TraceEntry")]
#[derive(PartialEq)]
struct PyTraceEntry {
    inner: rg::TraceEntry,
}

#[pymethods]
impl PyTraceEntry {
    /// Index of the input in the scenario.
    #[getter]
    fn index(&self) -> u32 {
        self.inner.index
    }
    /// The input, as a canonical dict.
    #[getter]
    fn input<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.input)
    }
    /// What it produced, or None when it was refused.
    #[getter]
    fn step(&self) -> Option<PyStep> {
        self.inner.step.clone().map(|inner| PyStep { inner })
    }
    /// The refusal as an `InputError` (not raised), or None.
    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .error
            .as_ref()
            .map(|e| exception(py, Api::Input, e))
            .transpose()
    }
    /// The canonical JSON-shaped dict (`index`, `input`, `step` or `error`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner)
    }
    /// The canonical JSON text.
    fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }
    fn __repr__(&self) -> String {
        let input = json_of(&self.inner.input);
        let outcome = match (&self.inner.step, &self.inner.error) {
            (_, Some(e)) => format!("error={:?}", e.code.as_str()),
            (Some(s), None) => PyStep { inner: s.clone() }.__repr__(),
            (None, None) => String::new(),
        };
        format!(
            "TraceEntry(index={}, input={}, {outcome})",
            self.inner.index, input["kind"]
        )
    }
}

/// A read-only summary of where a policy stands.
#[pyclass(frozen, eq, module = "rollguard", name = "Status")]
#[derive(PartialEq)]
struct PyStatus {
    inner: rg::Status,
}

#[pymethods]
impl PyStatus {
    /// The policy's time (ms).
    #[getter]
    fn now(&self) -> u64 {
        self.inner.now
    }
    /// The aliases (`stable`, `candidate`, `previous`, `golden`) as a dict.
    #[getter]
    fn aliases<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.aliases)
    }
    /// The phase the gates run in, if any.
    #[getter]
    fn phase(&self) -> Option<String> {
        json_of(&self.inner.phase).as_str().map(str::to_owned)
    }
    /// Candidate traffic percent.
    #[getter]
    fn weight(&self) -> u32 {
        self.inner.weight
    }
    /// The rollout's stage index.
    #[getter]
    fn stage(&self) -> Option<u32> {
        self.inner.stage
    }
    /// The action waiting for acknowledgement.
    #[getter]
    fn pending_action(&self) -> Option<u64> {
        self.inner.pending_action
    }
    /// Paused, and by whom (`operator` or `approval`).
    #[getter]
    fn paused(&self) -> Option<String> {
        json_of(&self.inner.paused).as_str().map(str::to_owned)
    }
    /// Halted, and why.
    #[getter]
    fn halted(&self) -> Option<String> {
        json_of(&self.inner.halted).as_str().map(str::to_owned)
    }
    /// Whether the breaker is open.
    #[getter]
    fn breaker_open(&self) -> bool {
        self.inner.breaker_open
    }
    /// End of the cooldown, if one runs.
    #[getter]
    fn cooldown_until(&self) -> Option<u64> {
        self.inner.cooldown_until
    }
    /// Gates currently tripped.
    #[getter]
    fn tripped_gates(&self) -> Vec<String> {
        self.inner.tripped_gates.clone()
    }
    /// Side effects held (recorded, neither compensated nor committed yet).
    #[getter]
    fn effects_held(&self) -> u32 {
        self.inner.effects_held
    }
    /// Of those, how many wait to be compensated after a rollback.
    #[getter]
    fn compensations_waiting(&self) -> u32 {
        self.inner.compensations_waiting
    }
    /// The ladder's `pause_onboarding` rung holds: tenants new to the candidate stay off it.
    #[getter]
    fn onboarding_paused(&self) -> bool {
        self.inner.onboarding_paused
    }
    /// The scopes the ladder's `route_back` rung sent back to stable, as scope-key dicts.
    #[getter]
    fn routed_back<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.routed_back)
    }
    /// The ladder's `freeze` rung holds until `resume`.
    #[getter]
    fn frozen(&self) -> bool {
        self.inner.frozen
    }
    /// A gradual rollback under way or stopped, as a dict (`step`, `steps`,
    /// `from_weight`, `weight`, `bake_ends_at`, `stopped`), or None.
    #[getter]
    fn gradual_rollback<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .gradual_rollback
            .as_ref()
            .map(|g| dict_of(py, g))
            .transpose()
    }
    /// The canonical JSON-shaped dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Status({})",
            compact_fields(&json_of(&self.inner), &[]).trim_start_matches(", ")
        )
    }
}

// ------------------------------------------------------------------ columns

fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    NUMPY
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("numpy")?.unbind()))
        .map(|m| m.bind(py))
}

fn column_error(py: Python<'_>, path: String, message: String) -> PyErr {
    raise(
        py,
        Api::Input,
        &conv(rg::ErrorCode::InvalidJson, path, message),
    )
}

/// A converted column: a numpy array that is aligned, contiguous and of dtype `T` (to
/// be read in place, no copy), or the values of a sequence.
///
/// It is read ([`Column::read`]) only once every column of the call has been converted:
/// converting one may run Python code (`__float__`, `__array__`) that could resize or
/// rewrite another's array, and nothing of Python runs from the first read until the
/// core returns and the reads are dropped.
enum Column<'py, T: Element> {
    Array(Bound<'py, PyArray1<T>>),
    Owned(Vec<T>),
}

/// A column being read: its numbers as a slice.
enum Read<'a, 'py, T: Element> {
    View(PyReadonlyArray1<'py, T>),
    Slice(&'a [T]),
}

impl<T: Element> core::ops::Deref for Read<'_, '_, T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            // Checked when the read began (`Column::read`).
            Read::View(a) => a.as_slice().unwrap_or_default(),
            Read::Slice(s) => s,
        }
    }
}

impl<'py, T: Element> Column<'py, T> {
    /// Starts reading: see [`Column`] for when.
    fn read(&self, name: &str) -> PyResult<Read<'_, 'py, T>> {
        match self {
            Column::Array(a) => {
                let fail = |why: String| column_error(a.py(), name.into(), why);
                // Python code run by another column's conversion could have changed the
                // array's dtype or layout in place: check both again.
                if !a.dtype().is_equiv_to(&T::get_dtype(a.py())) {
                    return Err(fail("the array's dtype changed while converting".into()));
                }
                let view = a.try_readonly().map_err(|e| fail(e.to_string()))?;
                view.as_slice()
                    .map_err(|e| fail(format!("the array changed while converting: {e}")))?;
                Ok(Read::View(view))
            }
            Column::Owned(v) => Ok(Read::Slice(v)),
        }
    }
}

/// `numpy.require(obj, dtype, "CA")` (contiguous and aligned: numpy copies when it
/// must), or `obj` itself when it already is such an array of that dtype.
/// Errors are `invalid_json` at `name`: not numbers, or not one-dimensional.
fn numpy_column<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    dtype: &str,
    name: &str,
) -> PyResult<Column<'py, T>> {
    if let Some(c) = view(obj) {
        return Ok(c);
    }
    let fail = |e: String| {
        let message = format!("expected a 1-d array of {dtype}: {e}");
        column_error(obj.py(), name.into(), message)
    };
    let arr = numpy(obj.py())?
        .call_method1("require", (obj, dtype, "CA"))
        .map_err(|e| fail(e.to_string()))?;
    view(&arr).ok_or_else(|| fail("numpy gave no contiguous 1-d array".into()))
}

/// `obj` when it already is an aligned, contiguous 1-d array of dtype `T`: a type
/// check, no call into Python (this keeps small batches cheap).
fn view<'py, T: Element>(obj: &Bound<'py, PyAny>) -> Option<Column<'py, T>> {
    let arr = obj.cast::<PyArray1<T>>().ok()?;
    (arr.is_contiguous() && arr.is_aligned()).then(|| Column::Array(arr.clone()))
}

/// A column of times in ms: unsigned, or signed (checked not negative when read).
enum Times<'py> {
    Signed(Column<'py, i64>),
    Unsigned(Column<'py, u64>),
}

/// Times being read.
enum TimesRead<'a, 'py> {
    Signed(Read<'a, 'py, i64>),
    Unsigned(Read<'a, 'py, u64>),
}

impl<'py> Times<'py> {
    /// Starts reading (see [`Column`] for when), refusing a negative time.
    fn read(&self, py: Python<'py>) -> PyResult<TimesRead<'_, 'py>> {
        match self {
            Times::Signed(c) => {
                let read = c.read("at")?;
                // One branch-free pass (it vectorizes); the row is looked for only on
                // refusal.
                if read.iter().fold(0, |acc, t| acc | t) < 0
                    && let Some((i, t)) = read.iter().enumerate().find(|(_, t)| **t < 0)
                {
                    return Err(column_error(
                        py,
                        format!("at[{i}]"),
                        format!("time {t} is negative"),
                    ));
                }
                Ok(TimesRead::Signed(read))
            }
            Times::Unsigned(c) => Ok(TimesRead::Unsigned(c.read("at")?)),
        }
    }
}

impl TimesRead<'_, '_> {
    fn ms(&self) -> &[u64] {
        match self {
            // No time is negative (checked in `Times::read`), so the same bits read as
            // u64 are the same numbers.
            TimesRead::Signed(r) => bytemuck::cast_slice(r),
            TimesRead::Unsigned(r) => r,
        }
    }
}

fn is_sequence(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()
}

/// The dtype kind of a numpy array (`f`, `i`, `u`, `M`, ...), after `numpy.asarray`.
fn array_kind<'py>(obj: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, String)> {
    let arr = numpy(obj.py())?.call_method1("asarray", (obj,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    Ok((arr, kind))
}

fn float_column<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Column<'py, f64>> {
    let py = obj.py();
    if is_sequence(obj) {
        let mut out = Vec::with_capacity(obj.len()?);
        for (i, item) in obj.try_iter()?.enumerate() {
            let item = item?;
            let v = match item.cast::<PyFloat>() {
                Ok(f) => f.value(),
                Err(_) => item.extract::<f64>().map_err(|e| {
                    column_error(
                        py,
                        format!("{name}[{i}]"),
                        format!("expected a number: {e}"),
                    )
                })?,
            };
            out.push(v);
        }
        return Ok(Column::Owned(out));
    }
    numpy_column(obj, "float64", name)
}

fn int_column<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Column<'py, i64>> {
    let py = obj.py();
    if is_sequence(obj) {
        let mut out = Vec::with_capacity(obj.len()?);
        for (i, item) in obj.try_iter()?.enumerate() {
            let item = item?;
            let v = if item.is_instance_of::<PyFloat>() {
                None
            } else {
                item.extract::<i64>().ok()
            };
            out.push(v.ok_or_else(|| {
                column_error(py, format!("{name}[{i}]"), "expected an integer".into())
            })?);
        }
        return Ok(Column::Owned(out));
    }
    let (arr, kind) = array_kind(obj)?;
    match kind.as_str() {
        "i" | "b" => numpy_column(&arr, "int64", name),
        // Above i64::MAX the core's count range check refuses the value anyway.
        "u" => Ok(Column::Owned(
            numpy_column::<u64>(&arr, "uint64", name)?
                .read(name)? // copied at once, before any other column converts
                .iter()
                .map(|n| i64::try_from(*n).unwrap_or(i64::MAX))
                .collect(),
        )),
        _ => Err(column_error(
            py,
            name.into(),
            format!("expected an integer array, got dtype kind {kind:?}"),
        )),
    }
}

fn time_column<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Times<'py>> {
    let py = obj.py();
    if is_sequence(obj) {
        let mut out = Vec::with_capacity(obj.len()?);
        for (i, item) in obj.try_iter()?.enumerate() {
            let item = item?;
            let t = match item.extract::<u64>() {
                Ok(t) if !item.is_instance_of::<PyBool>() => t,
                _ => time_of(&item, &format!("at[{i}]"), Api::Input)?,
            };
            out.push(t);
        }
        return Ok(Times::Unsigned(Column::Owned(out)));
    }
    if let Some(v) = view(obj) {
        return Ok(Times::Signed(v));
    }
    let (arr, kind) = array_kind(obj)?;
    match kind.as_str() {
        "u" => Ok(Times::Unsigned(numpy_column(&arr, "uint64", "at")?)),
        "i" => Ok(Times::Signed(numpy_column(&arr, "int64", "at")?)),
        // numpy datetimes carry no time zone: they are read as UTC, numpy's convention.
        // `view` reinterprets the ms counts as int64 without a copy.
        "M" => Ok(Times::Signed(numpy_column(
            &arr.call_method1("astype", ("datetime64[ms]",))?
                .call_method1("view", ("int64",))?,
            "int64",
            "at",
        )?)),
        "O" => time_column(&arr.call_method0("tolist")?),
        _ => Err(column_error(
            py,
            "at".into(),
            format!("expected integer ms or datetime64, got dtype kind {kind:?}"),
        )),
    }
}

/// A label column (`tenant`, `tier` or `agent` of `observe_many`), dictionary-encoded:
/// its codes (read as the other columns are, see [`Column`]) and categories.
struct LabelArg<'py> {
    codes: Column<'py, i32>,
    categories: Vec<String>,
}

/// Converts a label column: a pandas `Categorical`, or anything else with `codes` and
/// `categories` (read as they are: no row is converted in Python); a pandas `Series` of
/// category dtype (its `.cat`); a numpy array of strings (encoded by `numpy.unique`); or
/// a sequence (or an array of objects) of strings and `None` (encoded row by row).
/// pandas is never imported: its objects are recognized by their attributes.
fn label_column<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<LabelArg<'py>> {
    let py = obj.py();
    let fail = |why: String| column_error(py, name.into(), why);
    if obj.is_instance_of::<PyString>() {
        return Err(fail(
            "expected a column of labels, one per row, not a str".into(),
        ));
    }
    if obj.hasattr("codes")? && obj.hasattr("categories")? {
        return dictionary(&obj.getattr("codes")?, &obj.getattr("categories")?, name);
    }
    // A Series of another dtype refuses `.cat` (AttributeError).
    if let Ok(cat) = obj.getattr("cat")
        && cat.hasattr("codes")?
        && cat.hasattr("categories")?
    {
        return dictionary(&cat.getattr("codes")?, &cat.getattr("categories")?, name);
    }
    if is_sequence(obj) {
        return encoded(obj, name);
    }
    let (arr, kind) = array_kind(obj)?;
    match kind.as_str() {
        "U" => {
            let kwargs = PyDict::new(py);
            kwargs.set_item("return_inverse", true)?;
            let unique = numpy(py)?.call_method("unique", (&arr,), Some(&kwargs))?;
            let (categories, inverse): (Bound<'py, PyAny>, Bound<'py, PyAny>) = unique.extract()?;
            dictionary(&inverse.call_method0("ravel")?, &categories, name)
        }
        "O" => encoded(&arr.call_method0("tolist")?, name),
        _ => Err(fail(format!(
            "expected strings (or None), a pandas Categorical, or codes and categories; \
             got dtype kind {kind:?}"
        ))),
    }
}

/// A label column from its integer codes (-1: none) and its categories (strings).
fn dictionary<'py>(
    codes: &Bound<'py, PyAny>,
    categories: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<LabelArg<'py>> {
    let fail = |why: String| column_error(codes.py(), name.into(), why);
    // A pandas Index or a numpy array becomes a list first.
    let categories = match categories.call_method0("tolist") {
        Ok(list) => list,
        Err(_) => categories.clone(),
    };
    let categories = categories
        .extract::<Vec<String>>()
        .map_err(|e| fail(format!("the categories must be strings: {e}")))?;
    let (codes, kind) = array_kind(codes)?;
    if !matches!(kind.as_str(), "i" | "u") {
        return Err(fail(format!(
            "expected integer codes, got dtype kind {kind:?}"
        )));
    }
    // pandas keeps codes in the narrowest integer type (int8 up to 127 categories):
    // widened in one numpy call. Codes beyond int32 do not index any list of strings.
    let codes = numpy_column(&codes, "int32", name)?;
    Ok(LabelArg { codes, categories })
}

/// Encodes a sequence of strings and `None`, row by row.
fn encoded<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<LabelArg<'py>> {
    let py = obj.py();
    let mut labels = Vec::with_capacity(obj.len()?);
    for (i, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        if item.is_none() {
            labels.push(None);
            continue;
        }
        let s = item.cast::<PyString>().map_err(|_| {
            column_error(
                py,
                format!("{name}[{i}]"),
                "expected a string or None".into(),
            )
        })?;
        labels.push(Some(s.to_cow()?.into_owned()));
    }
    let encoded = rg::LabelCodes::encode(labels)
        .map_err(|e| raise(py, Api::Input, &conv(e.code, name, e.message)))?;
    Ok(LabelArg {
        codes: Column::Owned(encoded.codes),
        categories: encoded.categories,
    })
}

/// Starts reading the codes of the label columns (see [`Column`] for when).
fn read_label_codes<'a, 'py>(
    labels: &'a [Option<LabelArg<'py>>; 3],
) -> PyResult<[Option<Read<'a, 'py, i32>>; 3]> {
    let read = |k: usize, name: &str| -> PyResult<Option<Read<'a, 'py, i32>>> {
        labels[k].as_ref().map(|l| l.codes.read(name)).transpose()
    };
    Ok([read(0, "tenant")?, read(1, "tier")?, read(2, "agent")?])
}

/// The core's label columns (tenant, tier, agent) over converted label columns and
/// their codes being read; `None` without any.
fn labels_of<'a>(
    labels: &'a [Option<LabelArg<'_>>; 3],
    codes: &'a [Option<Read<'_, '_, i32>>; 3],
) -> Option<rg::Labels<'a, String>> {
    let column = |k: usize| {
        let (l, c) = (labels[k].as_ref()?, codes[k].as_deref()?);
        Some(rg::LabelColumn::new(c, &l.categories))
    };
    let [tenant, tier, agent] = [0, 1, 2].map(column);
    (tenant.is_some() || tier.is_some() || agent.is_some()).then_some(rg::Labels {
        tenant,
        tier,
        agent,
    })
}

/// The columns of an `observe_many` call: every column converted before any is read
/// (see `Column`), then `values` runs on `target` with the times, values and labels,
/// or `counts` with the times, events, totals and labels.
#[allow(clippy::type_complexity)] // the three optional columns, as Python passes them
fn observe_columns<T, R>(
    py: Python<'_>,
    target: &mut T,
    at: &Bound<'_, PyAny>,
    (value, events, total): (
        Option<&Bound<'_, PyAny>>,
        Option<&Bound<'_, PyAny>>,
        Option<&Bound<'_, PyAny>>,
    ),
    [tenant, tier, agent]: [Option<&Bound<'_, PyAny>>; 3],
    values: impl FnOnce(&mut T, &[u64], &[f64], Option<&rg::Labels<'_, String>>) -> PyResult<R>,
    counts: impl FnOnce(&mut T, &[u64], &[i64], &[i64], Option<&rg::Labels<'_, String>>) -> PyResult<R>,
) -> PyResult<R> {
    let times = time_column(at)?;
    let labels = [
        tenant.map(|o| label_column(o, "tenant")).transpose()?,
        tier.map(|o| label_column(o, "tier")).transpose()?,
        agent.map(|o| label_column(o, "agent")).transpose()?,
    ];
    let read_codes = || read_label_codes(&labels);
    match (value, events, total) {
        (Some(v), None, None) => {
            let v = float_column(v, "value")?;
            let (at, v, codes) = (times.read(py)?, v.read("value")?, read_codes()?);
            values(target, at.ms(), &v, labels_of(&labels, &codes).as_ref())
        }
        (None, Some(e), Some(n)) => {
            let e = int_column(e, "events")?;
            let n = int_column(n, "total")?;
            let (at, e, n) = (times.read(py)?, e.read("events")?, n.read("total")?);
            let codes = read_codes()?;
            counts(target, at.ms(), &e, &n, labels_of(&labels, &codes).as_ref())
        }
        _ => Err(PyTypeError::new_err(
            "observe_many takes value=, or events= and total=",
        )),
    }
}

// ------------------------------------------------------------------ Policy

fn observe_input(sample: Value) -> Value {
    let mut m = match sample {
        Value::Object(m) => m,
        other => return other,
    };
    m.insert("kind".into(), Value::String("observe".into()));
    Value::Object(m)
}

/// A rollback policy: feed it samples, ticks, acknowledgements and commands; act on the
/// decisions of the `Step` each returns.
#[pyclass(eq, module = "rollguard", name = "Policy")]
#[derive(Clone, PartialEq)]
struct PyPolicy {
    inner: rg::Policy,
}

impl PyPolicy {
    fn run(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut rg::Policy) -> Result<rg::Step, rg::Error>,
    ) -> PyResult<PyStep> {
        let inner = &mut self.inner;
        core(py, Api::Input, || f(inner)).map(|inner| PyStep { inner })
    }

    fn input(&mut self, py: Python<'_>, value: Value) -> PyResult<PyStep> {
        let input = core(py, Api::Input, || rg::Input::from_value(value))?;
        self.run(py, |p| p.handle(&input))
    }

    fn restored(
        py: Python<'_>,
        f: impl FnOnce() -> Result<rg::Policy, rg::Error>,
    ) -> PyResult<Self> {
        core(py, Api::Snapshot, f).map(|inner| Self { inner })
    }
}

#[pymethods]
impl PyPolicy {
    /// Creates a policy from a config dict at time `now` (int ms or aware datetime).
    #[new]
    #[pyo3(signature = (config, *, now = None))]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let now = now.map_or(Ok(0), |n| time_of(n, "now", Api::Config))?;
        let value = value_of(config, Api::Config)?;
        core(py, Api::Config, || {
            rg::Policy::new(rg::PolicyConfig::from_value(value)?, now)
        })
        .map(|inner| Self { inner })
    }

    /// Parses a config from JSON text and creates the policy.
    #[classmethod]
    #[pyo3(signature = (text, *, now = None))]
    fn from_json(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &str,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let now = now.map_or(Ok(0), |n| time_of(n, "now", Api::Config))?;
        core(py, Api::Config, || rg::Policy::from_json(text, now)).map(|inner| Self { inner })
    }

    /// Restores a policy from a snapshot (a dict from `snapshot()`, or its JSON text).
    #[classmethod]
    fn restore(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        snapshot: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if let Ok(text) = snapshot.cast::<PyString>() {
            let text = text.to_cow()?;
            return Self::restored(py, || rg::Policy::restore_json(&text));
        }
        let value = value_of(snapshot, Api::Snapshot)?;
        Self::restored(py, || rg::Policy::restore(rg::Snapshot::from_value(value)?))
    }

    /// Restores a policy from a snapshot's JSON text.
    #[classmethod]
    fn restore_json(_cls: &Bound<'_, PyType>, py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::restored(py, || rg::Policy::restore_json(text))
    }

    /// Applies any input, given as a canonical input dict (`{"kind": "tick", "at": 5}`).
    fn handle(&mut self, py: Python<'_>, input: &Bound<'_, PyAny>) -> PyResult<PyStep> {
        let value = value_of(input, Api::Input)?;
        self.input(py, value)
    }

    /// Parses one input from JSON text and applies it (the core's JSON parser).
    fn handle_json(&mut self, py: Python<'_>, text: &str) -> PyResult<PyStep> {
        self.run(py, |p| p.handle_json(text))
    }

    /// Records one sample dict: `at`, `arm`, `metric`, and `value` or `events` + `total`.
    fn observe(&mut self, py: Python<'_>, sample: &Bound<'_, PyAny>) -> PyResult<PyStep> {
        let value = observe_input(value_of(sample, Api::Input)?);
        self.input(py, value)
    }

    /// The fast path for one value sample.
    fn observe_value(
        &mut self,
        py: Python<'_>,
        at: &Bound<'_, PyAny>,
        arm: &str,
        metric: &str,
        value: f64,
    ) -> PyResult<PyStep> {
        let at = time_of(at, "at", Api::Input)?;
        self.run(py, |p| p.observe_value(at, arm, metric, value))
    }

    /// The fast path for one count sample: `events` out of `total`.
    fn observe_count(
        &mut self,
        py: Python<'_>,
        at: &Bound<'_, PyAny>,
        arm: &str,
        metric: &str,
        events: i64,
        total: i64,
    ) -> PyResult<PyStep> {
        let at = time_of(at, "at", Api::Input)?;
        self.run(py, |p| p.observe_count(at, arm, metric, events, total))
    }

    /// Records several sample dicts atomically, in time order.
    fn observe_batch(&mut self, py: Python<'_>, samples: &Bound<'_, PyAny>) -> PyResult<PyStep> {
        let samples = value_of(samples, Api::Input)?;
        let mut m = Map::new();
        m.insert("kind".into(), Value::String("observe_batch".into()));
        m.insert("samples".into(), samples);
        self.input(py, Value::Object(m))
    }

    /// Records a column of samples of one metric on one arm, atomically: `value` for a
    /// value metric, or `events` and `total` for a count metric. Columns are numpy arrays
    /// or sequences; `at` holds int ms, aware datetimes or numpy datetime64 (UTC).
    /// `tenant`, `tier` and `agent` are label columns (a pandas Categorical or category
    /// Series, a numpy array of strings, or a sequence of strings and None): the result
    /// is the same as `observe` of each row with its labels.
    #[pyo3(signature = (
        arm, metric, at, value = None, *, events = None, total = None,
        tenant = None, tier = None, agent = None
    ))]
    #[allow(clippy::too_many_arguments)] // Python's signature: one argument per column.
    fn observe_many(
        &mut self,
        py: Python<'_>,
        arm: &str,
        metric: &str,
        at: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        events: Option<&Bound<'_, PyAny>>,
        total: Option<&Bound<'_, PyAny>>,
        tenant: Option<&Bound<'_, PyAny>>,
        tier: Option<&Bound<'_, PyAny>>,
        agent: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyStep> {
        let step = observe_columns(
            py,
            &mut self.inner,
            at,
            (value, events, total),
            [tenant, tier, agent],
            |inner, at, v, labels| {
                core(py, Api::Input, || match labels {
                    None => inner.observe_values(arm, metric, at, v),
                    Some(l) => inner.observe_values_labelled(arm, metric, at, v, l),
                })
            },
            |inner, at, e, n, labels| {
                core(py, Api::Input, || match labels {
                    None => inner.observe_counts(arm, metric, at, e, n),
                    Some(l) => inner.observe_counts_labelled(arm, metric, at, e, n, l),
                })
            },
        )?;
        Ok(PyStep { inner: step })
    }

    /// Time passes: fires every timer due at or before `now` (int ms or aware datetime).
    fn tick(&mut self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<PyStep> {
        let now = time_of(now, "at", Api::Input)?;
        self.run(py, |p| p.tick(now))
    }

    /// An operator command or protocol input by kind, with its fields as keywords:
    /// `command("pause", at=5000)`, `command("ack", at=t, action_id=3)`,
    /// `command("revert_now", at=t, target="golden")`.
    #[pyo3(signature = (kind, /, at, **fields))]
    fn command(
        &mut self,
        py: Python<'_>,
        kind: &str,
        at: &Bound<'_, PyAny>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyStep> {
        let mut m = match fields
            .map(|f| value_of(f.as_any(), Api::Input))
            .transpose()?
        {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        m.insert("kind".into(), Value::String(kind.into()));
        m.insert("at".into(), Value::from(time_of(at, "at", Api::Input)?));
        self.input(py, Value::Object(m))
    }

    /// When the policy next needs a `tick` (ms), or None.
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline()
    }

    /// The policy's current time: the latest input's (ms).
    #[getter]
    fn now(&self) -> u64 {
        self.inner.now()
    }

    /// The policy's config, as a canonical dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, self.inner.config())
    }

    /// The aliases and the state of the rollout, breaker and cooldown.
    fn status(&self) -> PyStatus {
        PyStatus {
            inner: self.inner.status(),
        }
    }

    /// Where a routing key goes now (docs/assignment.md): a dict with ``arm``
    /// (``"stable"`` or ``"candidate"``), ``version``, ``reason`` (``no_rollout``,
    /// ``stable``, ``candidate``, ``rolled_back``, ``promoted``), ``weight_bp``, ``salt``
    /// (absent without a rollout) and ``pinned``. With ``session_started_at`` (int ms or
    /// an aware datetime), the session keeps the weight in effect when it started for
    /// ``assignment.pin_max_ms``, asked at ``now`` (default: the policy's time). A query:
    /// it changes nothing.
    ///
    /// Raises ``InputError`` (``invalid_value`` for a session that starts after ``now``,
    /// ``time_out_of_range``, ``invalid_json`` for a key with a lone surrogate).
    #[pyo3(signature = (key, *, session_started_at = None, now = None))]
    fn assign<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        session_started_at: Option<&Bound<'py, PyAny>>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = key_bytes(key)?;
        let started = session_started_at
            .map(|t| time_of(t, "session_started_at", Api::Input))
            .transpose()?;
        let now = now.map(|t| time_of(t, "now", Api::Input)).transpose()?;
        let p = &self.inner;
        let a = core(py, Api::Input, || p.assign_maybe_pinned(&key, started, now))?;
        dict_of(py, &a)
    }

    /// Everything a router needs to answer ``assign`` itself, for any key and session
    /// (docs/assignment.md, "Routing tables"): a dict with ``mode`` (``no_rollout``,
    /// ``split``, ``rolled_back``, ``promoted``), ``stable``, ``candidate`` (absent
    /// without a rollout), ``salt`` (likewise), ``weight_bp``, ``weights`` (the
    /// acknowledged weight changes, ``[{"at", "weight_bp"}]``) and ``pin_max_ms``. A
    /// query: it changes nothing.
    fn routing_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.routing_table())
    }

    /// The registered versions, as dicts.
    fn versions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.versions())
    }

    /// The whole state with its config, as a dict (`Policy.restore` takes it back).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.snapshot())
    }

    /// The snapshot as the core's canonical JSON text.
    fn snapshot_json(&self) -> String {
        self.inner.snapshot().to_json()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    /// Pickles through the snapshot's JSON text.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let restore = slf.get_type().getattr("restore_json")?;
        Ok((restore, (slf.borrow().inner.snapshot().to_json(),)))
    }

    fn __repr__(&self) -> String {
        let s = self.inner.status();
        format!(
            "Policy(now={}, stable={:?}, candidate={}, phase={}, weight={})",
            s.now,
            s.aliases.stable,
            json_of(&s.aliases.candidate),
            json_of(&s.phase),
            s.weight
        )
    }
}

// ------------------------------------------------------------------ Agents

/// Per-agent policies (README "Per-agent versions"): one policy per agent, each with its
/// own versions, rollout, gates, cooldown and breaker. Inputs are the policy's with an
/// optional ``agent`` key; steps are dicts ``{"at", "agents": [{"agent", "step"}]}``
/// listing the agents with something to say, in name order.
#[pyclass(eq, module = "rollguard", name = "Agents")]
#[derive(Clone, PartialEq)]
struct PyAgents {
    inner: rg::Agents,
}

impl PyAgents {
    fn input<'py>(&mut self, py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
        let input = core(py, Api::Input, || rg::AgentInput::from_value(value))?;
        let inner = &mut self.inner;
        let step = core(py, Api::Input, || inner.handle(&input))?;
        dict_of(py, &step)
    }

    fn restored(
        py: Python<'_>,
        f: impl FnOnce() -> Result<rg::Agents, rg::Error>,
    ) -> PyResult<Self> {
        core(py, Api::Snapshot, f).map(|inner| Self { inner })
    }
}

#[pymethods]
impl PyAgents {
    /// Creates every agent's policy from an agents config dict at time `now`.
    #[new]
    #[pyo3(signature = (config, *, now = None))]
    fn new(
        py: Python<'_>,
        config: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let now = now.map_or(Ok(0), |n| time_of(n, "now", Api::Config))?;
        let value = value_of(config, Api::Config)?;
        core(py, Api::Config, || {
            rg::Agents::new(rg::AgentsConfig::from_value(value)?, now)
        })
        .map(|inner| Self { inner })
    }

    /// Parses an agents config from JSON text and creates the agents.
    #[classmethod]
    #[pyo3(signature = (text, *, now = None))]
    fn from_json(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        text: &str,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let now = now.map_or(Ok(0), |n| time_of(n, "now", Api::Config))?;
        core(py, Api::Config, || rg::Agents::from_json(text, now)).map(|inner| Self { inner })
    }

    /// Restores the agents from a snapshot (a dict from `snapshot()`, or its JSON text).
    #[classmethod]
    fn restore(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        snapshot: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if let Ok(text) = snapshot.cast::<PyString>() {
            let text = text.to_cow()?;
            return Self::restored(py, || rg::Agents::restore_json(&text));
        }
        let value = value_of(snapshot, Api::Snapshot)?;
        Self::restored(py, || {
            rg::Agents::restore(rg::AgentsSnapshot::from_value(value)?)
        })
    }

    /// Restores the agents from a snapshot's JSON text.
    #[classmethod]
    fn restore_json(_cls: &Bound<'_, PyType>, py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::restored(py, || rg::Agents::restore_json(text))
    }

    /// Applies any input dict, with an optional ``agent`` key.
    fn handle<'py>(
        &mut self,
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = value_of(input, Api::Input)?;
        self.input(py, value)
    }

    /// Parses one input from JSON text and applies it (the core's JSON parser).
    fn handle_json<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
        let inner = &mut self.inner;
        let step = core(py, Api::Input, || inner.handle_json(text))?;
        dict_of(py, &step)
    }

    /// Records one sample dict; it goes to the agent of its ``agent`` label.
    fn observe<'py>(
        &mut self,
        py: Python<'py>,
        sample: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = observe_input(value_of(sample, Api::Input)?);
        self.input(py, value)
    }

    /// Records a column of samples of one metric on one arm of ``agent``, atomically:
    /// ``value`` for a value metric, or ``events`` and ``total`` for a count metric, as
    /// ``Policy.observe_many`` takes them (``tenant`` and ``tier`` label columns
    /// included). The result is that of ``observe`` of each row for that agent: the
    /// other agents fire their timers at the rows' times as they fall due.
    #[pyo3(signature = (
        agent, arm, metric, at, value = None, *, events = None, total = None,
        tenant = None, tier = None
    ))]
    #[allow(clippy::too_many_arguments)] // Python's signature: one argument per column.
    fn observe_many<'py>(
        &mut self,
        py: Python<'py>,
        agent: &str,
        arm: &str,
        metric: &str,
        at: &Bound<'py, PyAny>,
        value: Option<&Bound<'py, PyAny>>,
        events: Option<&Bound<'py, PyAny>>,
        total: Option<&Bound<'py, PyAny>>,
        tenant: Option<&Bound<'py, PyAny>>,
        tier: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let none = rg::Labels::<String>::default();
        let step = observe_columns(
            py,
            &mut self.inner,
            at,
            (value, events, total),
            [tenant, tier, None],
            |inner, at, v, labels| {
                let l = labels.unwrap_or(&none);
                core(py, Api::Input, || {
                    inner.observe_values(agent, arm, metric, at, v, l)
                })
            },
            |inner, at, e, n, labels| {
                let l = labels.unwrap_or(&none);
                core(py, Api::Input, || {
                    inner.observe_counts(agent, arm, metric, at, e, n, l)
                })
            },
        )?;
        dict_of(py, &step)
    }

    /// Records several sample dicts atomically, in time order, each going to the agent
    /// of its label (or ``agent``).
    #[pyo3(signature = (samples, *, agent = None))]
    fn observe_batch<'py>(
        &mut self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
        agent: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let samples = value_of(samples, Api::Input)?;
        let mut m = Map::new();
        m.insert("kind".into(), Value::String("observe_batch".into()));
        m.insert("samples".into(), samples);
        if let Some(a) = agent {
            m.insert("agent".into(), Value::String(a.into()));
        }
        self.input(py, Value::Object(m))
    }

    /// Time passes: every agent fires its timers due at or before `now`.
    fn tick<'py>(
        &mut self,
        py: Python<'py>,
        now: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = time_of(now, "at", Api::Input)?;
        let inner = &mut self.inner;
        let step = core(py, Api::Input, || inner.tick(now))?;
        dict_of(py, &step)
    }

    /// A command by kind, with its fields as keywords; ``agent=`` sends it to one agent,
    /// without it a command goes to every agent (atomically): ``command("ack", at=t,
    /// action_id=3, agent="negotiator")``, ``command("start_rollout", at=t, version="v3")``.
    #[pyo3(signature = (kind, /, at, **fields))]
    fn command<'py>(
        &mut self,
        py: Python<'py>,
        kind: &str,
        at: &Bound<'py, PyAny>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut m = match fields
            .map(|f| value_of(f.as_any(), Api::Input))
            .transpose()?
        {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        m.insert("kind".into(), Value::String(kind.into()));
        m.insert("at".into(), Value::from(time_of(at, "at", Api::Input)?));
        self.input(py, Value::Object(m))
    }

    /// When some agent next needs a `tick` (ms), or None.
    fn next_deadline(&self) -> Option<u64> {
        self.inner.next_deadline()
    }

    /// The agents' time: the latest input's (ms).
    #[getter]
    fn now(&self) -> u64 {
        self.inner.now()
    }

    /// The agents' names, in order.
    #[getter]
    fn agents(&self) -> Vec<String> {
        self.inner.agents().map(str::to_string).collect()
    }

    /// The agents config, as a canonical dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, self.inner.config())
    }

    /// Every agent's status, as a dict of status dicts by agent.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.status())
    }

    /// Where a routing key of ``agent`` goes now (``Policy.assign`` of its policy).
    #[pyo3(signature = (agent, key, *, session_started_at = None, now = None))]
    fn assign<'py>(
        &self,
        py: Python<'py>,
        agent: &str,
        key: &Bound<'py, PyAny>,
        session_started_at: Option<&Bound<'py, PyAny>>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = key_bytes(key)?;
        let started = session_started_at
            .map(|t| time_of(t, "session_started_at", Api::Input))
            .transpose()?;
        let now = now.map(|t| time_of(t, "now", Api::Input)).transpose()?;
        let a = &self.inner;
        let assignment = core(py, Api::Input, || {
            a.assign_maybe_pinned(agent, &key, started, now)
        })?;
        dict_of(py, &assignment)
    }

    /// ``agent``'s routing table (``Policy.routing_table`` of its policy).
    fn routing_table<'py>(&self, py: Python<'py>, agent: &str) -> PyResult<Bound<'py, PyAny>> {
        let a = &self.inner;
        let table = core(py, Api::Input, || a.routing_table(agent))?;
        dict_of(py, &table)
    }

    /// Every agent's state with the config, as a dict (`Agents.restore` takes it back).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        dict_of(py, &self.inner.snapshot())
    }

    /// The snapshot as the core's canonical JSON text.
    fn snapshot_json(&self) -> String {
        self.inner.snapshot().to_json()
    }

    fn __copy__(&self) -> Self {
        self.clone()
    }

    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Self {
        self.clone()
    }

    /// Pickles through the snapshot's JSON text.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let restore = slf.get_type().getattr("restore_json")?;
        Ok((restore, (slf.borrow().inner.snapshot().to_json(),)))
    }

    fn __repr__(&self) -> String {
        let agents: Vec<&str> = self.inner.agents().collect();
        format!(
            "Agents(now={}, agents={})",
            self.inner.now(),
            json_of(&agents)
        )
    }
}

// ------------------------------------------------------------------ replay

/// Replays a scenario (a dict or its JSON text) into its trace. Refused inputs are part
/// of the trace; a bad scenario or config raises `ConfigError`.
#[pyfunction]
fn replay(py: Python<'_>, scenario: &Bound<'_, PyAny>) -> PyResult<Vec<PyTraceEntry>> {
    let scenario = scenario_of(scenario)?;
    let trace = core(py, Api::Config, || rg::replay(&scenario))?;
    Ok(trace
        .into_iter()
        .map(|inner| PyTraceEntry { inner })
        .collect())
}

/// A scenario given as a dict or as its JSON text; refused as `ConfigError`.
fn scenario_of(scenario: &Bound<'_, PyAny>) -> PyResult<rg::Scenario> {
    let py = scenario.py();
    if let Ok(text) = scenario.cast::<PyString>() {
        let text = text.to_cow()?;
        return core(py, Api::Config, || rg::Scenario::from_json(&text));
    }
    let value = value_of(scenario, Api::Config)?;
    core(py, Api::Config, || rg::Scenario::from_value(value))
}

// ------------------------------------------------------------------ kayenta

/// Converts a Kayenta canary config (a dict or its JSON text) into rollguard pieces: a
/// dict with `metrics`, `gates` (dry-run mann_whitney gates, then kayenta_score) and
/// `warnings`; a value rollguard cannot carry over raises `ConfigError` with its path.
#[pyfunction]
fn import_kayenta<'py>(py: Python<'py>, config: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let text = if let Ok(text) = config.cast::<PyString>() {
        text.to_cow()?.into_owned()
    } else {
        value_of(config, Api::Config)?.to_string()
    };
    let imported = core(py, Api::Config, || rg::import_kayenta(&text))?;
    let value = serde_json::to_value(&imported)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    to_py(py, &value)
}

// ------------------------------------------------------------------ assignment

/// A routing key's bytes: a `str` is its UTF-8 bytes, `bytes` are themselves. A `str`
/// with a lone surrogate has no UTF-8 bytes and is refused as `invalid_json`, as the
/// JSON parser refuses it in a document.
fn key_bytes<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(b) = key.cast::<PyBytes>() {
        return Ok(std::borrow::Cow::Borrowed(b.as_bytes()));
    }
    let Ok(s) = key.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "key must be str or bytes, not {}",
            key.get_type().name()?
        )));
    };
    match s.to_cow() {
        Ok(text) => Ok(std::borrow::Cow::Owned(text.into_owned().into_bytes())),
        Err(_) => Err(raise(
            key.py(),
            Api::Input,
            &conv(
                rg::ErrorCode::InvalidJson,
                "key",
                "a key str with a lone surrogate has no UTF-8 bytes; pass bytes",
            ),
        )),
    }
}

fn salt_of(py: Python<'_>, salt: &str) -> PyResult<rg::Salt> {
    core(py, Api::Input, || rg::Salt::from_hex(salt))
}

/// An int as an i64, saturating: every int beyond i64 is out of any range the core
/// reads from one, and the core says so with its own code.
fn saturating_i64(n: &Bound<'_, PyInt>) -> PyResult<i64> {
    match n.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(_) if n.lt(0)? => Ok(i64::MIN),
        Err(_) => Ok(i64::MAX),
    }
}

/// The arm of a routing key (`rollguard-assign-v1`, docs/assignment.md): ``"candidate"``
/// iff the key's bucket under ``salt`` is below ``weight_bp``, the candidate's share in
/// basis points (percent × 100, 0..=10000). ``key`` is a str (its UTF-8 bytes) or bytes;
/// ``salt`` is 16 lowercase hex digits.
///
/// Raises ``InputError`` with code ``invalid_salt`` or ``weight_out_of_range``.
///
/// >>> rollguard.assign("user-42", salt="0000000000000000", weight_bp=2500)
/// 'stable'
#[pyfunction]
#[pyo3(signature = (key, *, salt, weight_bp))]
fn assign(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    salt: &str,
    weight_bp: &Bound<'_, PyInt>,
) -> PyResult<&'static str> {
    let key = key_bytes(key)?;
    let salt = salt_of(py, salt)?;
    let weight = saturating_i64(weight_bp)?;
    let arm = core(py, Api::Input, || {
        rg::assign(salt, &key, rg::weight_bp_from_i64(weight)?)
    })?;
    Ok(arm.as_str())
}

/// The bucket of a routing key under ``salt``, in 0..=9999: the key is on the candidate
/// while the weight in basis points is above it.
///
/// >>> rollguard.assign_bucket("user-42", salt="0000000000000000")
/// 5312
#[pyfunction]
#[pyo3(signature = (key, *, salt))]
fn assign_bucket(py: Python<'_>, key: &Bound<'_, PyAny>, salt: &str) -> PyResult<u32> {
    let key = key_bytes(key)?;
    let salt = salt_of(py, salt)?;
    Ok(rg::bucket(salt, &key))
}

/// A rollout's salt, derived from the policy's name, the candidate version's id and the
/// rollout's sequence number, as 16 lowercase hex digits.
///
/// >>> rollguard.salt_for("checkout", "v2", 1)
/// '2c8e44f195891421'
#[pyfunction]
fn salt_for(
    py: Python<'_>,
    policy_name: &str,
    version_id: &str,
    rollout_seq: &Bound<'_, PyInt>,
) -> PyResult<String> {
    let seq = rollout_seq.extract::<u64>().map_err(|_| {
        raise(
            py,
            Api::Input,
            &conv(
                rg::ErrorCode::InvalidJson,
                "rollout_seq",
                format!("a rollout_seq is an integer in 0..=2^64-1, not {rollout_seq}"),
            ),
        )
    })?;
    Ok(rg::salt_for(policy_name, version_id, seq).to_hex())
}

// ------------------------------------------------------------------ backtest

/// A backtest's refusal, with the backtest's code and path: `ConfigError` for a spec (a
/// backtest spec is configuration), `InputError` for a recording.
fn backtest_err(py: Python<'_>, e: &rollguard_backtest::BacktestError) -> PyErr {
    backtest_err_as(py, Api::Config, e)
}

fn backtest_err_as(py: Python<'_>, api: Api, e: &rollguard_backtest::BacktestError) -> PyErr {
    let exc = (|| -> PyResult<Bound<'_, PyAny>> {
        let errs = errors(py)?;
        let ty = if matches!(api, Api::Input) {
            &errs.input
        } else {
            &errs.config
        };
        let exc = ty.bind(py).call1((e.to_string(),))?;
        exc.setattr("code", &e.code)?;
        exc.setattr("path", &e.path)?;
        exc.setattr("message", &e.message)?;
        Ok(exc)
    })();
    match exc {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// A policy config given as a dict or as its JSON text.
fn policy_config(obj: &Bound<'_, PyAny>) -> PyResult<rg::PolicyConfig> {
    let py = obj.py();
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_cow()?;
        return core(py, Api::Config, || rg::PolicyConfig::from_json(&text));
    }
    let value = value_of(obj, Api::Config)?;
    core(py, Api::Config, || rg::PolicyConfig::from_value(value))
}

/// A backtest document (a spec, samples, outcomes) given as Python objects or as JSON
/// text, parsed as `T`; refused as `ConfigError` with code `invalid_json` at `what`.
fn document<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let py = obj.py();
    let parsed = if let Ok(text) = obj.cast::<PyString>() {
        serde_json::from_str(&text.to_cow()?)
    } else {
        serde_json::from_value(value_of(obj, Api::Config)?)
    };
    parsed.map_err(|e| {
        backtest_err(
            py,
            &rollguard_backtest::BacktestError {
                code: "invalid_json".into(),
                path: what.into(),
                message: e.to_string(),
            },
        )
    })
}

fn optional_floats<'py>(
    c: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Option<Column<'py, f64>>> {
    c.map(|c| float_column(c, name)).transpose()
}

fn read_optional<'a, 'py>(
    c: &'a Option<Column<'py, f64>>,
    name: &str,
) -> PyResult<Option<Read<'a, 'py, f64>>> {
    c.as_ref().map(|c| c.read(name)).transpose()
}

/// Recorded samples for a backtest, built once from columns and reused by every
/// replication.
#[pyclass(name = "Recording", module = "rollguard", frozen)]
struct PyRecording {
    inner: rollguard_backtest::Recording,
}

impl PyRecording {
    /// A recording of `samples`; an empty one is refused as `InputError`.
    fn of(py: Python<'_>, samples: Vec<rg::Sample>) -> PyResult<Self> {
        rollguard_backtest::Recording::new(samples)
            .map(|inner| Self { inner })
            .map_err(|e| backtest_err_as(py, Api::Input, &e))
    }
}

#[pymethods]
impl PyRecording {
    /// A recording from columns of equal length, one sample per row: `at` (int ms or
    /// datetime64), `arm` and `metric` (strings, a numpy string array or a pandas
    /// Categorical), then `value` for value metrics and `events` and `total` for count
    /// metrics (floats, NaN where a row has none: a long table mixing both kinds), and
    /// optional `tenant`, `tier` and `agent` labels.
    #[staticmethod]
    #[pyo3(signature = (
        at, arm, metric, value = None, events = None, total = None,
        tenant = None, tier = None, agent = None
    ))]
    #[allow(clippy::too_many_arguments)] // Python's signature: one argument per column.
    fn from_columns(
        py: Python<'_>,
        at: &Bound<'_, PyAny>,
        arm: &Bound<'_, PyAny>,
        metric: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
        events: Option<&Bound<'_, PyAny>>,
        total: Option<&Bound<'_, PyAny>>,
        tenant: Option<&Bound<'_, PyAny>>,
        tier: Option<&Bound<'_, PyAny>>,
        agent: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let times = time_column(at)?;
        let arm = label_column(arm, "arm")?;
        let metric = label_column(metric, "metric")?;
        let (value, events, total) = (
            optional_floats(value, "value")?,
            optional_floats(events, "events")?,
            optional_floats(total, "total")?,
        );
        let labels = [
            tenant.map(|o| label_column(o, "tenant")).transpose()?,
            tier.map(|o| label_column(o, "tier")).transpose()?,
            agent.map(|o| label_column(o, "agent")).transpose()?,
        ];
        let at = times.read(py)?;
        let at = at.ms();
        let (arm_codes, metric_codes) = (arm.codes.read("arm")?, metric.codes.read("metric")?);
        let (value, events, total) = (
            read_optional(&value, "value")?,
            read_optional(&events, "events")?,
            read_optional(&total, "total")?,
        );
        let codes = read_label_codes(&labels)?;
        let rows = at.len();
        let fail = |path: String, why: String| column_error(py, path, why);
        for (name, len) in [
            ("arm", Some(arm_codes.len())),
            ("metric", Some(metric_codes.len())),
            ("value", value.as_ref().map(|c| c.len())),
            ("events", events.as_ref().map(|c| c.len())),
            ("total", total.as_ref().map(|c| c.len())),
        ] {
            if len.is_some_and(|n| n != rows) {
                return Err(fail(
                    name.into(),
                    format!("has {} rows, at has {rows}", len.unwrap_or(0)),
                ));
            }
        }
        let label = |l: &LabelArg<'_>, code: i32, path: String| -> PyResult<Option<String>> {
            if code < 0 {
                return Ok(None);
            }
            l.categories
                .get(code as usize)
                .cloned()
                .map(Some)
                .ok_or_else(|| fail(path, format!("code {code} has no category")))
        };
        let count =
            |c: &Option<Read<'_, '_, f64>>, i: usize, name: &str| -> PyResult<Option<i64>> {
                match c.as_ref().map(|c| c[i]) {
                    Some(x) if !x.is_nan() => core(py, Api::Input, || {
                        rg::count_from_number(x, &format!("{name}[{i}]")).map(Some)
                    }),
                    _ => Ok(None),
                }
            };
        let mut samples = Vec::with_capacity(rows);
        for i in 0..rows {
            let required = |l: &LabelArg<'_>, code: i32, name: &str| {
                label(l, code, format!("{name}[{i}]"))?
                    .ok_or_else(|| fail(format!("{name}[{i}]"), "is missing".into()))
            };
            let [tenant, tier, agent] = [0, 1, 2].map(|k| match (&labels[k], &codes[k]) {
                (Some(l), Some(c)) => label(l, c[i], format!("label[{i}]")),
                _ => Ok(None),
            });
            samples.push(rg::Sample {
                at: at[i],
                arm: required(&arm, arm_codes[i], "arm")?,
                metric: required(&metric, metric_codes[i], "metric")?,
                value: value.as_ref().map(|c| c[i]).filter(|x| !x.is_nan()),
                events: count(&events, i, "events")?,
                total: count(&total, i, "total")?,
                tenant: tenant?,
                tier: tier?,
                agent: agent?,
            });
        }
        Self::of(py, samples)
    }

    /// A recording from sample dicts (as `Policy.observe` takes them), or their JSON
    /// text as a list.
    #[staticmethod]
    fn from_samples(samples: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = samples.py();
        let samples: Vec<rg::Sample> = document(samples, "samples")?;
        Self::of(py, samples)
    }

    /// The traffic a scenario's (a dict or its JSON text) stable version served: each
    /// version's samples while it was the stable one.
    #[staticmethod]
    fn from_scenario(scenario: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = scenario.py();
        let scenario = scenario_of(scenario)?;
        rollguard_backtest::Recording::from_scenario(&scenario)
            .map(|inner| Self { inner })
            .map_err(|e| backtest_err(py, &e))
    }

    /// The samples as JSON text (a list), for pickling and storage.
    fn to_json(&self) -> String {
        serde_json::to_string(self.inner.samples()).unwrap_or_default()
    }

    /// Pickles as its samples (`Recording.from_samples` of `to_json`), so a recording
    /// can travel to another process (a Ray worker) and back unchanged.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let from = slf.get_type().getattr("from_samples")?;
        Ok((from, (slf.get().to_json(),)))
    }

    fn __len__(&self) -> usize {
        self.inner.samples().len()
    }

    /// The first sample's time, in ms.
    #[getter]
    fn start(&self) -> u64 {
        self.inner.start()
    }

    /// The last sample's time, in ms.
    #[getter]
    fn end(&self) -> u64 {
        self.inner.end()
    }

    fn __repr__(&self) -> String {
        format!(
            "Recording({} samples, {} .. {} ms)",
            self.inner.samples().len(),
            self.inner.start(),
            self.inner.end()
        )
    }
}

/// One replication of a backtest: `config` (a policy, dict or JSON), `recording`,
/// `spec` (a backtest spec, dict or JSON) and the replication's index. Returns its
/// outcome as a dict; the same on any machine and in any process.
#[pyfunction]
fn backtest_replication<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    recording: &PyRecording,
    spec: &Bound<'py, PyAny>,
    replication: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let config = policy_config(config)?;
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    let outcome = py
        .detach(|| {
            rollguard_backtest::run_replication(&config, &recording.inner, &spec, replication)
        })
        .map_err(|e| backtest_err(py, &e))?;
    dict_of(py, &outcome)
}

/// Checks without running anything that `spec` (dict or JSON) runs `config` on
/// `recording`: raises the `ConfigError` (or `InputError`) a backtest of it would.
#[pyfunction]
fn backtest_check(
    py: Python<'_>,
    config: &Bound<'_, PyAny>,
    recording: &PyRecording,
    spec: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let config = policy_config(config)?;
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    rollguard_backtest::check(&config, &recording.inner, &spec).map_err(|e| backtest_err(py, &e))
}

/// Checks without running anything that `backtest_calibrate` with these arguments
/// can calibrate: raises the `ConfigError` it would raise before its search.
#[pyfunction]
#[pyo3(signature = (config, recording, spec, gate, target, parameter = None))]
fn backtest_check_calibration(
    py: Python<'_>,
    config: &Bound<'_, PyAny>,
    recording: &PyRecording,
    spec: &Bound<'_, PyAny>,
    gate: String,
    target: f64,
    parameter: Option<String>,
) -> PyResult<()> {
    let config = policy_config(config)?;
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    let what = rollguard_backtest::CalibrateSpec {
        gate,
        target,
        parameter,
    };
    rollguard_backtest::check_calibration(&config, &recording.inner, &spec, &what)
        .map_err(|e| backtest_err(py, &e))
}

/// Runs the drill library: see `rollguard.backtest.drills`. Returns `{"results":
/// [...], "markdown": "..."}`.
#[pyfunction]
fn backtest_drills<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    recording: &PyRecording,
    spec: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let config = policy_config(config)?;
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    let results = py
        .detach(|| rollguard_backtest::run_drills(&config, &recording.inner, &spec))
        .map_err(|e| backtest_err(py, &e))?;
    let out = PyDict::new(py);
    out.set_item("results", dict_of(py, &results)?)?;
    out.set_item("markdown", rollguard_backtest::drills_markdown(&results))?;
    Ok(out.into_any())
}

/// Checks a backtest spec (dict or JSON) and returns it as the core reads it, with
/// every default filled in; raises `ConfigError` as a backtest would.
#[pyfunction]
fn backtest_spec<'py>(py: Python<'py>, spec: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    spec.check().map_err(|e| backtest_err(py, &e))?;
    dict_of(py, &spec)
}

/// Sums up replications' outcomes (dicts from `backtest_replication`, in any order)
/// into a backtest report: a dict, with the Markdown table under `markdown`.
#[pyfunction]
fn backtest_report<'py>(
    py: Python<'py>,
    outcomes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let outcomes: Vec<rollguard_backtest::Outcome> = document(outcomes, "outcomes")?;
    let report = rollguard_backtest::Report::from_outcomes(outcomes);
    let out = dict_of(py, &report)?;
    out.set_item("markdown", report.to_markdown())?;
    Ok(out)
}

/// Calibrates one gate: see `rollguard.backtest.calibrate`.
#[pyfunction]
#[pyo3(signature = (config, recording, spec, gate, target, parameter = None))]
fn backtest_calibrate<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    recording: &PyRecording,
    spec: &Bound<'py, PyAny>,
    gate: String,
    target: f64,
    parameter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let config = policy_config(config)?;
    let spec: rollguard_backtest::BacktestSpec = document(spec, "spec")?;
    let what = rollguard_backtest::CalibrateSpec {
        gate,
        target,
        parameter,
    };
    let c = py
        .detach(|| rollguard_backtest::calibrate(&config, &recording.inner, &spec, &what))
        .map_err(|e| backtest_err(py, &e))?;
    dict_of(py, &c)
}

#[pymodule]
fn _rollguard(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let errs = errors(py)?;
    m.add("RollguardError", errs.base.bind(py))?;
    m.add("ConfigError", errs.config.bind(py))?;
    m.add("InputError", errs.input.bind(py))?;
    m.add("SnapshotError", errs.snapshot.bind(py))?;
    m.add("FORMAT_VERSION", rg::FORMAT_VERSION)?;
    m.add("SNAPSHOT_FORMAT_VERSION", rg::SNAPSHOT_FORMAT_VERSION)?;
    m.add(
        "AGENTS_SNAPSHOT_FORMAT_VERSION",
        rg::AGENTS_SNAPSHOT_FORMAT_VERSION,
    )?;
    m.add("TIME_MAX", rg::TIME_MAX)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyAgents>()?;
    m.add_class::<PyStep>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyTraceEntry>()?;
    m.add_class::<PyStatus>()?;
    m.add_function(wrap_pyfunction!(replay, m)?)?;
    m.add_function(wrap_pyfunction!(import_kayenta, m)?)?;
    m.add_function(wrap_pyfunction!(assign, m)?)?;
    m.add_function(wrap_pyfunction!(assign_bucket, m)?)?;
    m.add_function(wrap_pyfunction!(salt_for, m)?)?;
    m.add_class::<PyRecording>()?;
    m.add_function(wrap_pyfunction!(backtest_replication, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_report, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_spec, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_drills, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_check, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_check_calibration, m)?)?;
    m.add("ASSIGN_VERSION", rg::ASSIGN_VERSION)?;
    Ok(())
}
