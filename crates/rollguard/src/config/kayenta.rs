//! Import of a Kayenta canary config (the JSON a Kayenta server stores and Spinnaker's
//! canary-config editor writes): its metrics become dry-run `mann_whitney` gates and its
//! classifier a `kayenta_score` gate over them, metric names 1:1.
//!
//! Read, camelCase as Kayenta writes them: `judge.name`, `metrics[].name`, `.groups`,
//! `.analysisConfigurations.canary.{direction, critical, mustHaveData, muted, nanStrategy,
//! effectSize.{measure, allowedIncrease, allowedDecrease, criticalIncrease,
//! criticalDecrease}, outliers.{strategy, outlierFactor}}`, `classifier.groupWeights` and
//! `classifier.scoreThresholds.{pass, marginal}`. Provider queries (`query`,
//! `scopeName`), templates and everything Kayenta keeps about where metrics come from are
//! ignored and listed as warnings: the caller sends the samples. A value rollguard cannot
//! carry over (another judge, an unknown direction, strategy or measure) is an error with
//! the path of the field.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{GateConfig, MetricConfig, limits};
use crate::error::{Error, ErrorCode};

/// The judge whose rules rollguard implements.
const JUDGE: &str = "NetflixACAJudge-v1.0";

/// What a Kayenta canary config becomes: value metrics, one dry-run `mann_whitney` gate
/// per metric, then the `kayenta_score` gate, and what was left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KayentaImport {
    /// One value metric per Kayenta metric, named alike.
    pub metrics: Vec<MetricConfig>,
    /// The `mann_whitney` gates (named as the metrics), then `kayenta_score`.
    pub gates: Vec<GateConfig>,
    /// What was ignored or approximated, in document order.
    pub warnings: Vec<ImportWarning>,
}

/// Something of the Kayenta config that was ignored or approximated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportWarning {
    /// The field, as a path in the Kayenta document.
    pub path: String,
    /// What happened to it.
    pub message: String,
}

/// Reads a Kayenta canary config (its JSON text).
///
/// # Errors
/// `invalid_json` for text that is not a JSON object or a field of the wrong type,
/// `invalid_value` for a value rollguard does not carry over, `limit_exceeded` for more
/// metrics or groups than a `kayenta_score` gate holds, `duplicate_name` for a metric
/// named twice; each with the field's path.
pub fn import_kayenta(text: &str) -> Result<KayentaImport, Error> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| Error::new(ErrorCode::InvalidJson, "", e.to_string()))?;
    let root = doc
        .as_object()
        .ok_or_else(|| Error::new(ErrorCode::InvalidJson, "", "a canary config is an object"))?;
    let mut warnings = Vec::new();
    let mut warn = |path: &str, message: String| {
        warnings.push(ImportWarning {
            path: path.into(),
            message,
        });
    };
    if let Some(judge) = root.get("judge") {
        let name = judge.get("name").and_then(Value::as_str).unwrap_or(JUDGE);
        if name != JUDGE {
            return Err(invalid(
                "judge.name",
                format!("judge {name:?}: only {JUDGE}'s rules are imported"),
            ));
        }
        if judge
            .get("judgeConfigurations")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            warn(
                "judge.judgeConfigurations",
                "ignored: NetflixACAJudge reads none".into(),
            );
        }
    }
    if root
        .get("templates")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        warn(
            "templates",
            "ignored: query templates belong to the metrics provider".into(),
        );
    }
    let metrics = match root.get("metrics") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidJson,
                "metrics",
                "a canary config has a non-empty metrics array",
            ));
        }
    };
    if metrics.len() as u64 > u64::from(limits::KAYENTA_MEMBERS_MAX) {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            "metrics",
            format!(
                "{} metrics, a kayenta_score gate holds at most {}",
                metrics.len(),
                limits::KAYENTA_MEMBERS_MAX
            ),
        ));
    }
    let mut out_metrics = Vec::new();
    let mut gates = Vec::new();
    let mut members = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let at = format!("metrics[{i}]");
        let m = m
            .as_object()
            .ok_or_else(|| Error::new(ErrorCode::InvalidJson, &at, "a metric is an object"))?;
        let name = string(m, "name", &at)?
            .ok_or_else(|| Error::new(ErrorCode::InvalidJson, format!("{at}.name"), "missing"))?;
        if out_metrics.iter().any(|o: &MetricConfig| o.name == name) {
            return Err(Error::new(
                ErrorCode::DuplicateName,
                format!("{at}.name"),
                format!("metric {name:?} appears twice"),
            ));
        }
        if let Some(q) = m.get("query") {
            let kind = q.get("type").and_then(Value::as_str).unwrap_or("provider");
            warn(
                &format!("{at}.query"),
                format!(
                    "the {kind} query is not imported: send this metric's samples as value metric {name:?}"
                ),
            );
        }
        if let Some(scope) = m.get("scopeName").and_then(Value::as_str)
            && scope != "default"
        {
            warn(
                &format!("{at}.scopeName"),
                format!("scope {scope:?} ignored: the caller sends each arm's samples"),
            );
        }
        let groups: Vec<String> = match m.get("groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(j, g)| {
                    g.as_str().map(str::to_string).ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidJson,
                            format!("{at}.groups[{j}]"),
                            "a group is a string",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::InvalidJson,
                    format!("{at}.groups"),
                    "groups is an array of strings",
                ));
            }
        };
        let canary_at = format!("{at}.analysisConfigurations.canary");
        let empty = Map::new();
        let canary = match m
            .get("analysisConfigurations")
            .and_then(|a| a.get("canary"))
        {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(c)) => c,
            Some(_) => {
                return Err(Error::new(ErrorCode::InvalidJson, canary_at, "an object"));
            }
        };
        let worse = match string(canary, "direction", &canary_at)?.as_deref() {
            None | Some("either") => "either",
            Some("increase") => "higher",
            Some("decrease") => "lower",
            Some(other) => {
                return Err(invalid(
                    format!("{canary_at}.direction"),
                    format!("direction {other:?}: increase, decrease or either"),
                ));
            }
        };
        let critical = boolean(canary, "critical", &canary_at)?;
        let must_have_data = boolean(canary, "mustHaveData", &canary_at)?;
        let muted = boolean(canary, "muted", &canary_at)?;
        match string(canary, "nanStrategy", &canary_at)?.as_deref() {
            None | Some("remove") | Some("none") => {}
            Some("replace") => warn(
                &format!("{canary_at}.nanStrategy"),
                "replace is read as remove: rollguard refuses non-finite samples, and an interval without samples is no data, not pass"
                    .into(),
            ),
            Some(other) => {
                return Err(invalid(
                    format!("{canary_at}.nanStrategy"),
                    format!("nanStrategy {other:?}: remove or replace"),
                ));
            }
        }
        let mut rule = Map::new();
        rule.insert("kind".into(), "mann_whitney".into());
        rule.insert("worse".into(), worse.into());
        if let Some(e) = canary.get("effectSize") {
            let e_at = format!("{canary_at}.effectSize");
            let e = e
                .as_object()
                .ok_or_else(|| Error::new(ErrorCode::InvalidJson, &e_at, "an object"))?;
            match string(e, "measure", &e_at)?.as_deref() {
                None | Some("meanRatio") => {}
                Some("cles") => {
                    rule.insert("effect_size".into(), "cles".into());
                }
                Some(other) => {
                    return Err(invalid(
                        format!("{e_at}.measure"),
                        format!("measure {other:?}: meanRatio or cles"),
                    ));
                }
            }
            for (from, to) in [
                ("allowedIncrease", "allowed_increase"),
                ("allowedDecrease", "allowed_decrease"),
            ] {
                if let Some(v) = number(e, from, &e_at)? {
                    rule.insert(to.into(), v.into());
                }
            }
            for key in ["criticalIncrease", "criticalDecrease"] {
                if number(e, key, &e_at)?.is_some_and(|v| v != 1.0) {
                    warn(
                        &format!("{e_at}.{key}"),
                        "ignored: a critical member fails the score on any high or low".into(),
                    );
                }
            }
        }
        if let Some(o) = canary.get("outliers") {
            let o_at = format!("{canary_at}.outliers");
            let o = o
                .as_object()
                .ok_or_else(|| Error::new(ErrorCode::InvalidJson, &o_at, "an object"))?;
            let strategy = match string(o, "strategy", &o_at)?.as_deref() {
                None | Some("keep") => "keep",
                Some("remove") => "remove",
                Some(other) => {
                    return Err(invalid(
                        format!("{o_at}.strategy"),
                        format!("strategy {other:?}: keep or remove"),
                    ));
                }
            };
            let mut outliers = Map::new();
            outliers.insert("strategy".into(), strategy.into());
            if let Some(f) = number(o, "outlierFactor", &o_at)? {
                outliers.insert("factor".into(), f.into());
            }
            rule.insert("outliers".into(), Value::Object(outliers));
        }
        for key in canary.keys() {
            if !matches!(
                key.as_str(),
                "direction"
                    | "critical"
                    | "mustHaveData"
                    | "muted"
                    | "nanStrategy"
                    | "effectSize"
                    | "outliers"
            ) {
                warn(
                    &crate::json::key_path(&canary_at, key),
                    "ignored: not a Kayenta setting rollguard reads".into(),
                );
            }
        }
        let gate = serde_json::json!({
            "name": name,
            "metric": name,
            "stat": "mean",
            "dry_run": true,
            "rule": Value::Object(rule),
        });
        let gate: GateConfig = serde_json::from_value(gate)
            .map_err(|e| Error::new(ErrorCode::InvalidValue, &canary_at, e.to_string()))?;
        gate.validate(limits::LABEL_LEN_MAX).map_err(|e| {
            let field = e.path.clone();
            Error::new(
                e.code,
                canary_at.clone(),
                format!("{} (as rollguard's {field})", e.message),
            )
        })?;
        let metric: MetricConfig =
            serde_json::from_value(serde_json::json!({"name": name, "kind": "value"}))
                .map_err(|e| Error::new(ErrorCode::InvalidJson, &at, e.to_string()))?;
        out_metrics.push(metric);
        gates.push(gate);
        let mut member = Map::new();
        member.insert("gate".into(), name.into());
        if !groups.is_empty() {
            member.insert("groups".into(), groups.into());
        }
        for (key, on) in [
            ("critical", critical),
            ("must_have_data", must_have_data),
            ("muted", muted),
        ] {
            if on {
                member.insert(key.into(), true.into());
            }
        }
        members.push(Value::Object(member));
    }
    let empty = Map::new();
    let classifier = match root.get("classifier") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(c)) => c,
        Some(_) => {
            return Err(Error::new(
                ErrorCode::InvalidJson,
                "classifier",
                "an object",
            ));
        }
    };
    let mut weights = Map::new();
    match classifier.get("groupWeights") {
        None | Some(Value::Null) => {}
        Some(Value::Object(w)) => {
            for (g, v) in w {
                let v = v.as_f64().ok_or_else(|| {
                    Error::new(
                        ErrorCode::InvalidJson,
                        crate::json::key_path("classifier.groupWeights", g),
                        "a weight is a number",
                    )
                })?;
                weights.insert(g.clone(), v.into());
            }
        }
        Some(_) => {
            return Err(Error::new(
                ErrorCode::InvalidJson,
                "classifier.groupWeights",
                "an object of weights",
            ));
        }
    }
    let thresholds = classifier.get("scoreThresholds").and_then(Value::as_object);
    let threshold = |key: &str, default: f64| -> Result<f64, Error> {
        match thresholds.and_then(|t| t.get(key)) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidJson,
                    format!("classifier.scoreThresholds.{key}"),
                    "a number",
                )
            }),
        }
    };
    if thresholds.is_none() {
        warn(
            "classifier.scoreThresholds",
            "absent (Kayenta takes them from each execution): pass 95, marginal 75".into(),
        );
    }
    let (pass, marginal) = (threshold("pass", 95.0)?, threshold("marginal", 75.0)?);
    let first = out_metrics[0].name.clone();
    let judge = serde_json::json!({
        "name": "kayenta_score",
        "metric": first,
        "stat": "mean",
        "rule": {
            "kind": "kayenta_score",
            "members": members,
            "group_weights": Value::Object(weights),
            "pass": pass,
            "marginal": marginal,
        },
    });
    let judge: GateConfig = serde_json::from_value(judge)
        .map_err(|e| Error::new(ErrorCode::InvalidValue, "classifier", e.to_string()))?;
    judge
        .validate(limits::LABEL_LEN_MAX)
        .map_err(|e| classifier_error(&e))?;
    if gates.iter().any(|g| g.name == judge.name) {
        return Err(Error::new(
            ErrorCode::DuplicateName,
            "metrics",
            "a metric is named kayenta_score, the name of the composite gate",
        ));
    }
    gates.push(judge);
    Ok(KayentaImport {
        metrics: out_metrics,
        gates,
        warnings,
    })
}

/// An error of the `kayenta_score` gate, at the classifier's field it came from.
fn classifier_error(e: &Error) -> Error {
    let p = e.path.as_str();
    let path = if let Some(rest) = p.strip_prefix("rule.group_weights") {
        format!("classifier.groupWeights{rest}")
    } else if p == "rule.pass" {
        "classifier.scoreThresholds.pass".into()
    } else if p == "rule.marginal" {
        "classifier.scoreThresholds.marginal".into()
    } else if p.starts_with("rule.members") {
        "metrics".into()
    } else {
        "classifier".into()
    };
    Error::new(e.code, path, e.message.clone())
}

fn invalid(path: impl Into<String>, message: String) -> Error {
    Error::new(ErrorCode::InvalidValue, path, message)
}

fn string(m: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, Error> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::new(
            ErrorCode::InvalidJson,
            format!("{at}.{key}"),
            "a string",
        )),
    }
}

fn boolean(m: &Map<String, Value>, key: &str, at: &str) -> Result<bool, Error> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // Kayenta's MapUtils also reads "true" / "false".
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(Error::new(
            ErrorCode::InvalidJson,
            format!("{at}.{key}"),
            "a boolean",
        )),
    }
}

fn number(m: &Map<String, Value>, key: &str, at: &str) -> Result<Option<f64>, Error> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::new(ErrorCode::InvalidJson, format!("{at}.{key}"), "a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rule;

    const FIXTURE: &str = include_str!("../../tests/data/kayenta_canary_config.json");

    #[test]
    fn a_realistic_config_becomes_members_and_a_score() {
        let got = import_kayenta(FIXTURE).unwrap();
        let names: Vec<&str> = got.gates.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "request_latency_p50",
                "error_ratio",
                "success_rate",
                "heap_used",
                "kayenta_score"
            ]
        );
        assert!(got.gates[..4].iter().all(|g| g.dry_run));
        let Rule::KayentaScore {
            members,
            group_weights,
            pass,
            marginal,
        } = &got.gates[4].rule
        else {
            panic!("{:?}", got.gates[4].rule)
        };
        assert_eq!((*pass, *marginal), (95.0, 75.0));
        assert_eq!(group_weights.get("latency"), Some(&50.0));
        assert!(members[1].critical && members[3].must_have_data);
        let Rule::MannWhitney {
            worse,
            effect_size,
            outliers,
            allowed_increase,
            ..
        } = &got.gates[0].rule
        else {
            panic!()
        };
        assert_eq!(*worse, crate::config::Direction::Higher);
        assert_eq!(*effect_size, crate::config::EffectSize::Cles);
        assert_eq!(outliers.removal(), Some(3.0));
        assert_eq!(*allowed_increase, Some(0.6));
        // Every query is named in a warning.
        assert_eq!(
            got.warnings
                .iter()
                .filter(|w| w.path.ends_with(".query"))
                .count(),
            4
        );
    }

    #[test]
    fn any_prefix_or_retyped_field_is_an_error_not_a_panic() {
        // Every truncation of the fixture, and each scalar replaced by values of other
        // types, gives a result (most errors), never a panic.
        for end in 0..FIXTURE.len() {
            if FIXTURE.is_char_boundary(end) {
                let _ = import_kayenta(&FIXTURE[..end]);
            }
        }
        for (from, to) in [
            ("true", "\"yes\""),
            ("true", "null"),
            ("3.0", "\"3\""),
            ("0.6", "-1e308"),
            ("50", "\"half\""),
            ("\"latency\"]", "7]"),
            ("\"increase\"", "[]"),
            ("\"remove\"", "{}"),
            ("\"pass\": 95", "\"pass\": 50"),
        ] {
            let _ = import_kayenta(&FIXTURE.replace(from, to));
        }
    }

    #[test]
    fn unsupported_values_are_errors_with_their_path() {
        let bad = FIXTURE.replace("\"decrease\"", "\"sideways\"");
        let e = import_kayenta(&bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidValue);
        assert_eq!(e.path, "metrics[2].analysisConfigurations.canary.direction");
        let bad = FIXTURE.replace("NetflixACAJudge-v1.0", "RandomDummyJudge");
        assert_eq!(import_kayenta(&bad).unwrap_err().path, "judge.name");
        let bad = FIXTURE.replace("\"cles\"", "\"cohenD\"");
        assert_eq!(
            import_kayenta(&bad).unwrap_err().path,
            "metrics[0].analysisConfigurations.canary.effectSize.measure"
        );
        let bad = FIXTURE.replace("\"latency\": 50", "\"latency\": 150");
        assert_eq!(
            import_kayenta(&bad).unwrap_err().path,
            "classifier.groupWeights.latency"
        );
        assert_eq!(
            import_kayenta("[]").unwrap_err().code,
            ErrorCode::InvalidJson
        );
    }
}
