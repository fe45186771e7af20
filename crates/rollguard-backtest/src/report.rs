//! A backtest's report: its replications' outcomes summed up, as JSON and Markdown.

use std::collections::BTreeMap;

use rollguard::Reason;
use serde::{Deserialize, Serialize};

use crate::error::snake_name;
use crate::run::Outcome;

/// A proportion with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// How many.
    pub count: u32,
    /// Out of.
    pub of: u32,
    /// `count / of`.
    pub rate: f64,
    /// The interval's lower end.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
}

impl Rate {
    /// `count` of `of` with the Wilson score interval at 95 % (Wilson 1927; Newcombe
    /// 1998, method 3): unlike the normal interval it stays inside [0, 1] and is not
    /// empty at 0 of n, which is what a false-rollback rate usually is. Only `sqrt`
    /// (correctly rounded everywhere) is used, so it is the same on every platform.
    pub fn wilson(count: u32, of: u32) -> Self {
        const Z: f64 = 1.959_963_984_540_054;
        if of == 0 {
            return Self {
                count,
                of,
                rate: 0.0,
                low: 0.0,
                high: 1.0,
            };
        }
        let n = f64::from(of);
        let p = f64::from(count) / n;
        let z2 = Z * Z;
        let centre = p + z2 / (2.0 * n);
        let spread = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        let denominator = 1.0 + z2 / n;
        Self {
            count,
            of,
            rate: p,
            low: ((centre - spread) / denominator).max(0.0),
            high: ((centre + spread) / denominator).min(1.0),
        }
    }
}

/// Order statistics of a duration or a count, by nearest rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// How many values.
    pub n: u32,
    /// The smallest.
    pub min: u64,
    /// The median (nearest rank).
    pub p50: u64,
    /// The 90th percentile (nearest rank).
    pub p90: u64,
    /// The largest.
    pub max: u64,
}

impl Spread {
    /// The spread of `values`, `None` when there are none.
    pub fn of(mut values: Vec<u64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |q: u64| {
            let n = values.len() as u64;
            let k = (q * n).div_ceil(100).clamp(1, n);
            values[(k - 1) as usize]
        };
        Some(Self {
            n: values.len() as u32,
            min: values[0],
            p50: rank(50),
            p90: rank(90),
            max: values[values.len() - 1],
        })
    }
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Replications run.
    pub replications: u32,
    /// Whether a regression was injected.
    pub injected: bool,
    /// Replications in which the candidate was promoted.
    pub promoted: u32,
    /// Automated rollbacks of a candidate that was not (yet) degraded: every one
    /// without an injection, those before the onset with one.
    pub false_rollbacks: Rate,
    /// The false rollbacks by the reason the policy gave: `gate_failed` is a gate's
    /// verdict, `approval_timeout` a stage that could not conclude (too little data on
    /// the candidate, say), `breaker_tripped` the circuit breaker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub false_by_reason: BTreeMap<Reason, u32>,
    /// The false rollbacks by gate: how often each gate was among those the rollback
    /// named (a rollback naming two gates counts for both).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub false_by_gate: BTreeMap<String, u32>,
    /// With an injection: replications rolled back automatically at or after the onset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected: Option<Rate>,
    /// From the onset to the rollback decision, over the detected replications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_delay_ms: Option<Spread>,
    /// From the onset to the router's acknowledgement (traffic restored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_to_restored_ms: Option<Spread>,
    /// Units of the injected metric the candidate served from the onset until
    /// restored, over every injected replication (a missed regression keeps serving
    /// until the recording ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Spread>,
    /// How far the policy's `degradation_started_at` was from the true onset, in
    /// milliseconds either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_error_ms: Option<Spread>,
    /// Samples the policy refused, over all replications.
    pub refused: u64,
    /// Every replication's outcome, in order.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Sums up `outcomes` (in replication order; any split across workers, rejoined).
    pub fn from_outcomes(mut outcomes: Vec<Outcome>) -> Self {
        outcomes.sort_by_key(|o| o.replication);
        let n = outcomes.len() as u32;
        let injected = outcomes.iter().any(|o| o.onset.is_some());
        let automated = |o: &Outcome| o.rollback.as_ref().filter(|r| r.automated).map(|r| r.at);
        let false_ones: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| automated(o).is_some_and(|at| o.onset.is_none_or(|onset| at < onset)))
            .collect();
        let false_count = false_ones.len() as u32;
        let mut false_by_reason = BTreeMap::new();
        let mut false_by_gate = BTreeMap::new();
        for r in false_ones.iter().filter_map(|o| o.rollback.as_ref()) {
            *false_by_reason.entry(r.reason).or_insert(0) += 1;
            for g in &r.gates {
                *false_by_gate.entry(g.clone()).or_insert(0) += 1;
            }
        }
        let detections: Vec<(&Outcome, u64)> = outcomes
            .iter()
            .filter_map(|o| o.detection_delay().map(|d| (o, d)))
            .collect();
        let spread_if = |values: Vec<u64>| if injected { Spread::of(values) } else { None };
        Self {
            replications: n,
            injected,
            promoted: outcomes.iter().filter(|o| o.promoted_at.is_some()).count() as u32,
            false_rollbacks: Rate::wilson(false_count, n),
            false_by_reason,
            false_by_gate,
            detected: injected.then(|| Rate::wilson(detections.len() as u32, n)),
            detection_delay_ms: spread_if(detections.iter().map(|d| d.1).collect()),
            onset_to_restored_ms: spread_if(
                detections
                    .iter()
                    .filter_map(|(o, _)| {
                        let restored = o.rollback.as_ref()?.restored_at?;
                        Some(restored.saturating_sub(o.onset?))
                    })
                    .collect(),
            ),
            exposure: spread_if(
                outcomes
                    .iter()
                    .filter(|o| o.onset.is_some())
                    .map(|o| o.exposure)
                    .collect(),
            ),
            onset_error_ms: spread_if(
                detections
                    .iter()
                    .filter_map(|(o, _)| {
                        let estimate = o.rollback.as_ref()?.degradation_started_at?;
                        Some(estimate.abs_diff(o.onset?))
                    })
                    .collect(),
            ),
            refused: outcomes.iter().map(|o| o.refused).sum(),
            outcomes,
        }
    }

    /// The report as a Markdown table, for a pull request or a notebook.
    pub fn to_markdown(&self) -> String {
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let rate = |r: &Rate| {
            format!(
                "{} of {} ({}; 95 % CI {} – {})",
                r.count,
                r.of,
                pct(r.rate),
                pct(r.low),
                pct(r.high)
            )
        };
        let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1_000.0);
        let spread = |s: &Option<Spread>, f: &dyn Fn(u64) -> String| match s {
            Some(s) => format!(
                "median {}, p90 {}, min {}, max {} (n = {})",
                f(s.p50),
                f(s.p90),
                f(s.min),
                f(s.max),
                s.n
            ),
            None => "–".into(),
        };
        let mut rows = vec![
            ("replications", self.replications.to_string()),
            ("promoted", self.promoted.to_string()),
            ("false rollbacks", rate(&self.false_rollbacks)),
        ];
        let counts = |m: Vec<(String, u32)>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.false_by_reason.is_empty() {
            let reasons = self
                .false_by_reason
                .iter()
                .map(|(r, n)| (snake_name(r), *n));
            rows.push(("false rollbacks by reason", counts(reasons.collect())));
        }
        if !self.false_by_gate.is_empty() {
            let gates = self.false_by_gate.iter().map(|(g, n)| (g.clone(), *n));
            rows.push(("false rollbacks by gate", counts(gates.collect())));
        }
        if let Some(d) = &self.detected {
            rows.push(("regressions caught", rate(d)));
            rows.push(("onset → rollback", spread(&self.detection_delay_ms, &secs)));
            rows.push((
                "onset → traffic restored",
                spread(&self.onset_to_restored_ms, &secs),
            ));
            rows.push((
                "exposure (units served)",
                spread(&self.exposure, &|u| u.to_string()),
            ));
            rows.push(("onset estimate error", spread(&self.onset_error_ms, &secs)));
        }
        if self.refused > 0 {
            rows.push(("samples refused", self.refused.to_string()));
        }
        let mut out = String::from("| measure | result |\n|---|---|\n");
        for (k, v) in rows {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_intervals_match_newcombe_1998_table_1() {
        // Newcombe (1998), Statistics in Medicine 17:857–872, Table I, method 3
        // (score interval without continuity correction), to 4 decimals.
        for (count, of, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let r = Rate::wilson(count, of);
            assert!(
                close(r.low, low) && close(r.high, high),
                "{count}/{of}: {r:?}"
            );
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = Spread::of((1..=10).collect()).unwrap();
        assert_eq!((s.min, s.p50, s.p90, s.max, s.n), (1, 5, 9, 10, 10));
        let one = Spread::of(vec![7]).unwrap();
        assert_eq!((one.p50, one.p90), (7, 7));
        assert_eq!(Spread::of(vec![]), None);
    }
}
