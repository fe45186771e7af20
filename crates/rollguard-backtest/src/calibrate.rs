//! Calibration: the value of one gate's bound (or its `consecutive`) that meets a
//! target false-rollback rate on a recorded null, or, for a statistical gate, its
//! realised false-rollback rate against its nominal `alpha`.

use rollguard::PolicyConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BacktestError;
use crate::recording::Recording;
use crate::report::Rate;
use crate::spec::BacktestSpec;
use crate::{Report, backtest};

/// Bisection steps after the target is bracketed: the bracket shrinks 2^14 times.
const BISECTIONS: u32 = 14;
/// Doublings of the step while looking for a bracket.
const DOUBLINGS: u32 = 24;
/// The largest `consecutive` tried.
const CONSECUTIVE_MAX: u64 = 30;

/// What to calibrate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrateSpec {
    /// The gate, by name.
    pub gate: String,
    /// The false-rollback rate to meet, in [0, 1): the share of null replications
    /// rolled back naming this gate.
    pub target: f64,
    /// The setting searched: a bound of the gate's rule (`max`, `min`, `max_ratio`,
    /// `min_ratio`, `max_increase`, `max_decrease`) or `consecutive`. Default: the
    /// rule's one bound (a rule with several must name one). Ignored for a statistical
    /// gate, which is checked, not searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

/// One value tried, and the gate's false-rollback rate with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// The setting's value.
    pub value: f64,
    /// The gate's false rollbacks with it.
    pub rate: Rate,
}

/// What calibration found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The gate.
    pub gate: String,
    /// The setting searched, or `alpha` for a statistical gate.
    pub parameter: String,
    /// The target rate.
    pub target: f64,
    /// The value as configured, and the gate's false-rollback rate with it.
    pub configured: Trial,
    /// The tightest value tried that meets the target (a threshold search), with its
    /// rate; for a statistical gate, its nominal `alpha` and its realised rate.
    pub result: Trial,
    /// Whether the result meets the target. For a statistical gate: whether the
    /// realised rate's interval reaches down to its `alpha` (it is not significantly
    /// above its promise).
    pub met: bool,
    /// Every value tried, in order.
    pub trials: Vec<Trial>,
}

/// Calibrates one gate on `recording` run as `spec` (whose `inject` must be absent:
/// calibration is against the null). A dry-run gate is calibrated as if it acted.
///
/// # Errors
/// `invalid_value` for an injection, a target outside [0, 1), a gate without the
/// setting, or a search that finds no value meeting the target; `unknown_reference`
/// for an unknown gate; the backtest's errors.
pub fn calibrate(
    config: &PolicyConfig,
    recording: &Recording,
    spec: &BacktestSpec,
    what: &CalibrateSpec,
) -> Result<Calibration, BacktestError> {
    let (base, index) = plan(config, spec, what)?;
    let gate = &base["gates"][index];
    let rate_with = |path: &[&str], value: Option<f64>| -> Result<Rate, BacktestError> {
        let mut v = base.clone();
        if let Some(x) = value {
            let mut at = &mut v["gates"][index];
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = number(x, path == ["persistence", "consecutive"]);
        }
        let config: PolicyConfig =
            serde_json::from_value(v).map_err(|e| BacktestError::json("config", &e))?;
        let report = backtest(&config, recording, spec)?;
        Ok(gate_rate(&report, &what.gate))
    };
    if let Some(alpha) = gate["rule"]["alpha"].as_f64() {
        let realised = rate_with(&[], None)?;
        let trial = Trial {
            value: alpha,
            rate: realised,
        };
        return Ok(Calibration {
            gate: what.gate.clone(),
            parameter: "alpha".into(),
            target: what.target,
            configured: trial,
            result: trial,
            met: realised.low <= alpha,
            trials: vec![trial],
        });
    }
    let parameter = parameter_of(gate, what)?;
    let search = Search {
        target: what.target,
        trials: Vec::new(),
    };
    if parameter == "consecutive" {
        let configured = gate["persistence"]["consecutive"].as_u64().unwrap_or(3);
        return search.consecutive(&what.gate, configured, |n| {
            rate_with(&["persistence", "consecutive"], Some(n as f64))
        });
    }
    // parameter_of checked both.
    let (Some(looser), Some(configured)) = (
        looser_sign(&parameter),
        gate["rule"][parameter.as_str()].as_f64(),
    ) else {
        return Err(BacktestError::invalid(
            "parameter",
            "not a bound of the gate's rule",
        ));
    };
    search.bound(&what.gate, &parameter, configured, looser, |x| {
        rate_with(&["rule", parameter.as_str()], Some(x))
    })
}

/// Checks, without running a backtest, that `calibrate` can calibrate `what` on
/// `recording` run as `spec`: the spec against the policy and the recording (as
/// [`crate::check`]), no injection, the target, the gate and its setting.
///
/// # Errors
/// As [`calibrate`], before it runs anything (a search that finds no value is only
/// known by running it).
pub fn check_calibration(
    config: &PolicyConfig,
    recording: &Recording,
    spec: &BacktestSpec,
    what: &CalibrateSpec,
) -> Result<(), BacktestError> {
    crate::run::check(config, recording, spec)?;
    let (base, index) = plan(config, spec, what)?;
    let gate = &base["gates"][index];
    if gate["rule"]["alpha"].as_f64().is_none() {
        parameter_of(gate, what)?;
    }
    Ok(())
}

/// The policy as JSON with the calibrated gate acting (a dry-run gate is calibrated
/// as it would act: its trips roll back), and that gate's index.
fn plan(
    config: &PolicyConfig,
    spec: &BacktestSpec,
    what: &CalibrateSpec,
) -> Result<(Value, usize), BacktestError> {
    if spec.inject.is_some() {
        return Err(BacktestError::invalid(
            "inject",
            "calibration runs on the null: no injection",
        ));
    }
    if !(0.0..1.0).contains(&what.target) {
        return Err(BacktestError::invalid("target", "must be in [0, 1)"));
    }
    let mut base = serde_json::to_value(config).map_err(|e| BacktestError::json("config", &e))?;
    let index = base["gates"]
        .as_array()
        .and_then(|gates| gates.iter().position(|g| g["name"] == what.gate.as_str()))
        .ok_or_else(|| {
            BacktestError::new(
                "unknown_reference",
                "gate",
                format!("no gate {}", what.gate),
            )
        })?;
    base["gates"][index]["dry_run"] = Value::Bool(false);
    Ok((base, index))
}

/// The threshold gate's setting searched: `consecutive` or a bound its rule has.
fn parameter_of(gate: &Value, what: &CalibrateSpec) -> Result<String, BacktestError> {
    let parameter = match &what.parameter {
        Some(p) => p.clone(),
        None => only_bound(gate)?,
    };
    if parameter == "consecutive" {
        return Ok(parameter);
    }
    if looser_sign(&parameter).is_none() {
        return Err(BacktestError::invalid(
            "parameter",
            "not a bound calibration can search",
        ));
    }
    if gate["rule"][parameter.as_str()].as_f64().is_none() {
        return Err(BacktestError::invalid(
            "parameter",
            "the gate's rule has no such bound",
        ));
    }
    Ok(parameter)
}

/// The share of replications whose rollback named `gate`.
fn gate_rate(report: &Report, gate: &str) -> Rate {
    let count = report.false_by_gate.get(gate).copied().unwrap_or(0);
    Rate::wilson(count, report.replications)
}

fn number(x: f64, integer: bool) -> Value {
    if integer {
        Value::from(x as u64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// The rule's one bound, when it has exactly one.
fn only_bound(gate: &Value) -> Result<String, BacktestError> {
    let bounds: Vec<&String> = gate["rule"]
        .as_object()
        .map(|rule| rule.keys().filter(|k| looser_sign(k).is_some()).collect())
        .unwrap_or_default();
    match bounds.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(BacktestError::invalid(
            "parameter",
            "the gate's rule has no bound to search; name `consecutive`",
        )),
        _ => Err(BacktestError::invalid(
            "parameter",
            "the gate's rule has several bounds; name one",
        )),
    }
}

/// +1 when a larger value of the bound passes more, −1 when a smaller one does.
fn looser_sign(parameter: &str) -> Option<f64> {
    match parameter {
        "max" | "max_ratio" | "max_increase" | "max_decrease" => Some(1.0),
        "min" | "min_ratio" => Some(-1.0),
        _ => None,
    }
}

struct Search {
    target: f64,
    trials: Vec<Trial>,
}

impl Search {
    fn try_value(
        &mut self,
        value: f64,
        rate_at: &mut impl FnMut(f64) -> Result<Rate, BacktestError>,
    ) -> Result<bool, BacktestError> {
        let rate = rate_at(value)?;
        self.trials.push(Trial { value, rate });
        Ok(rate.rate <= self.target)
    }

    /// The tightest `consecutive` in 1..=30 that meets the target (the rate falls as
    /// it grows).
    fn consecutive(
        mut self,
        gate: &str,
        configured: u64,
        mut rate_at: impl FnMut(u64) -> Result<Rate, BacktestError>,
    ) -> Result<Calibration, BacktestError> {
        let mut at = |x: f64| rate_at(x as u64);
        self.try_value(configured as f64, &mut at)?;
        let configured = self.trials[0];
        let mut found = None;
        for n in 1..=CONSECUTIVE_MAX {
            let meets = if n == configured.value as u64 {
                configured.rate.rate <= self.target
            } else {
                self.try_value(n as f64, &mut at)?
            };
            if meets {
                found = Some(n);
                break;
            }
        }
        let n = found.ok_or_else(|| {
            BacktestError::invalid("target", "no consecutive up to 30 meets the target")
        })?;
        let result = self
            .trials
            .iter()
            .find(|t| t.value == n as f64)
            .copied()
            .unwrap_or(configured);
        Ok(self.finish(gate, "consecutive", configured, result))
    }

    /// Brackets the target by doubling a step from the configured value, then
    /// bisects: the result is the tightest value tried that meets the target.
    fn bound(
        mut self,
        gate: &str,
        parameter: &str,
        configured: f64,
        looser: f64,
        mut rate_at: impl FnMut(f64) -> Result<Rate, BacktestError>,
    ) -> Result<Calibration, BacktestError> {
        let meets_configured = self.try_value(configured, &mut rate_at)?;
        let first = self.trials[0];
        let mut step = (configured.abs() * 0.125).max(1e-9);
        let (mut tight, mut loose) = if meets_configured {
            (None, configured)
        } else {
            (Some(configured), configured)
        };
        // Find the other end of the bracket.
        let mut found = false;
        for _ in 0..DOUBLINGS {
            let direction = if meets_configured { -looser } else { looser };
            let x = configured + direction * step;
            if ratio_bound(parameter) && x <= 0.0 {
                break;
            }
            let meets = self.try_value(x, &mut rate_at)?;
            if meets && !meets_configured {
                loose = x;
                found = true;
                break;
            }
            if !meets && meets_configured {
                tight = Some(x);
                found = true;
                break;
            }
            if meets {
                loose = x;
            } else {
                tight = Some(x);
            }
            step *= 2.0;
        }
        if !found {
            return Err(if meets_configured {
                BacktestError::new(
                    "invalid_value",
                    "gate",
                    format!(
                        "{gate} rolled nothing back at any value tried (down to {}): it does \
                         not judge this traffic (its phases? samples_min?)",
                        self.trials.last().map_or(configured, |t| t.value)
                    ),
                )
            } else {
                BacktestError::invalid("target", "no value of the bound tried meets the target")
            });
        }
        if let Some(mut t) = tight {
            for _ in 0..BISECTIONS {
                let mid = (t + loose) / 2.0;
                if self.try_value(mid, &mut rate_at)? {
                    loose = mid;
                } else {
                    t = mid;
                }
            }
        }
        let result = self
            .trials
            .iter()
            .rev()
            .find(|tr| tr.value == loose)
            .copied()
            .unwrap_or(first);
        Ok(self.finish(gate, parameter, first, result))
    }

    fn finish(self, gate: &str, parameter: &str, configured: Trial, result: Trial) -> Calibration {
        Calibration {
            gate: gate.into(),
            parameter: parameter.into(),
            target: self.target,
            configured,
            met: result.rate.rate <= self.target,
            result,
            trials: self.trials,
        }
    }
}

fn ratio_bound(parameter: &str) -> bool {
    matches!(parameter, "max_ratio" | "min_ratio")
}
