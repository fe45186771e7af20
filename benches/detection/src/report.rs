//! The Markdown table and the JSON file.

use std::fmt::Write;

use serde::Serialize;

use crate::Settings;
use crate::method::Method;
use crate::stream::Scenario;
use crate::summary::{Quantiles, Summary};

/// What a run measured and how.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was run: mode, seed, replications, horizon, traffic.
    #[serde(flatten)]
    pub settings: Settings,
    /// Wall time of the run, seconds (filled in at the end).
    pub runtime_s: f64,
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// The methods, in order.
    pub methods: Vec<Method>,
    /// One cell per scenario × method, scenarios outer.
    pub results: Vec<Summary>,
}

/// Colours of the methods in the plots, by position, with their names for the legend.
pub const PALETTE: [((u8, u8, u8), &str); 16] = [
    ((31, 119, 180), "blue"),
    ((255, 127, 14), "orange"),
    ((44, 160, 44), "green"),
    ((214, 39, 40), "red"),
    ((148, 103, 189), "purple"),
    ((140, 86, 75), "brown"),
    ((227, 119, 194), "pink"),
    ((127, 127, 127), "grey"),
    ((188, 189, 34), "olive"),
    ((23, 190, 207), "cyan"),
    ((0, 0, 128), "navy"),
    ((0, 0, 0), "black"),
    ((255, 215, 0), "gold"),
    ((0, 128, 128), "teal"),
    ((128, 0, 0), "maroon"),
    ((152, 223, 138), "light green"),
];

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn q(x: Option<f64>, unit: &str) -> String {
    match x {
        Some(v) => format!("{v:.0}{unit}"),
        None => "—".into(),
    }
}

/// `gate ×n, …` for the gates that tripped in rollbacks, or `—`.
fn tripped(c: &Summary) -> String {
    if c.tripped_by.is_empty() {
        return "—".into();
    }
    c.tripped_by
        .iter()
        .map(|(g, n)| format!("{g} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pair(x: &Quantiles, unit: &str) -> String {
    format!("{} / {}", q(x.median, unit), q(x.p90, unit))
}

impl Report {
    /// The cell of `scenario` × `method`.
    pub fn cell(&self, scenario: &str, method: &str) -> Option<&Summary> {
        self.results
            .iter()
            .find(|s| s.scenario == scenario && s.method == method)
    }

    /// The Markdown report: settings, methods, the false-rollback table, the detection
    /// table and the plots' legend.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let per_arm = self.settings.traffic.per_arm();
        let _ = writeln!(
            m,
            "# rollguard detection benchmark ({} mode)\n",
            self.settings.mode
        );
        let _ = writeln!(
            m,
            "Seed {}, {} replications per null and {} per alternative, horizon {} min; \
             {} requests/s in total at nominal load, {} % to the candidate \
             ({:.0} req/s on the stable, {:.0} on the candidate); run time {:.0} s.\n",
            self.settings.seed,
            self.settings.null_reps,
            self.settings.alternative_reps,
            self.settings.horizon_s / 60,
            self.settings.traffic.requests_per_s,
            self.settings.traffic.weight,
            per_arm[0],
            per_arm[1],
            self.runtime_s
        );
        let _ = writeln!(m, "## Methods\n");
        for (i, method) in self.methods.iter().enumerate() {
            let _ = writeln!(
                m,
                "- `{}` ({} in the plots): {}",
                method.name,
                PALETTE[i % PALETTE.len()].1,
                method.description
            );
        }
        let _ = writeln!(
            m,
            "\n## Realised false-rollback rate on the nulls\n\n\
             Percent of healthy candidates rolled back within the horizon, with the \
             Wilson 95 % interval.\n"
        );
        let _ = write!(m, "| null | ");
        for method in &self.methods {
            let _ = write!(m, "`{}` | ", method.name);
        }
        let _ = writeln!(m);
        let _ = writeln!(m, "|---|{}", "---|".repeat(self.methods.len()));
        for s in self.scenarios.iter().filter(|s| s.is_null()) {
            let _ = write!(m, "| `{}`: {} | ", s.name, s.description);
            for method in &self.methods {
                if let Some(c) = self.cell(s.name, &method.name) {
                    let _ = write!(
                        m,
                        "{} % [{}, {}] | ",
                        pct(c.rate),
                        pct(c.rate_ci95.0),
                        pct(c.rate_ci95.1)
                    );
                }
            }
            let _ = writeln!(m);
        }
        let _ = writeln!(m, "\nGates that tripped in the false rollbacks:\n");
        for c in self.results.iter().filter(|c| c.null && c.rollbacks > 0) {
            let _ = writeln!(m, "- `{}` × `{}`: {}", c.scenario, c.method, tripped(c));
        }
        let _ = writeln!(
            m,
            "\n## Detection on the alternatives\n\n\
             The candidate regresses from the canary's start, or from its onset for a \
             `change_*` alternative; times and counts run from there. *early*: runs rolled \
             back at or before a later onset (false alarms on the healthy start; those runs \
             leave the other columns). *detected*: runs rolled back after the onset within \
             the horizon (Wilson 95 % interval); then median / p90 over all runs that \
             reached the onset of the time to rollback, the candidate requests served until then (samples per \
             arm), the errors on both arms until then, and the exposure (candidate requests \
             the regression changed until then: every request for a mean shift, the slowed \
             tail for p99, the extra errors for an error ratio). — : beyond the horizon \
             (more than half, or a tenth, of the runs were not rolled back). *tripped*: the \
             gates that tripped in the rollbacks, with their counts (a gate that does not \
             read the regressed metric tripping is a false alarm that happened first).\n"
        );
        let _ = writeln!(
            m,
            "| alternative | method | early | detected | delay | samples per arm | error events | exposure | tripped |"
        );
        let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|");
        for s in self.scenarios.iter().filter(|s| !s.is_null()) {
            for method in &self.methods {
                if let Some(c) = self.cell(s.name, &method.name) {
                    let _ = writeln!(
                        m,
                        "| `{}` | `{}` | {} | {} % [{}, {}] | {} | {} | {} | {} | {} |",
                        s.name,
                        method.name,
                        if s.onset_s == 0 {
                            "—".to_string()
                        } else {
                            format!("{} / {}", c.early_rollbacks, c.reps)
                        },
                        pct(c.rate),
                        pct(c.rate_ci95.0),
                        pct(c.rate_ci95.1),
                        pair(&c.delay_s, " s"),
                        pair(&c.candidate_samples, ""),
                        pair(&c.error_events, ""),
                        pair(&c.exposure, ""),
                        tripped(c)
                    );
                }
            }
        }
        let _ = writeln!(m, "\n## Alternatives\n");
        for s in self.scenarios.iter().filter(|s| !s.is_null()) {
            let _ = writeln!(m, "- `{}`: {}", s.name, s.description);
        }
        let _ = writeln!(
            m,
            "\n## Plots\n\n\
             - `delay_vs_shift.png`: median time to rollback (s, log scale) against the \
             mean shift (0.25, 0.5, 1, 2 σ), one line per method in the colours above; a \
             cross on the horizon line was not rolled back in more than half of the runs.\n\
             - `delay_vs_error_ratio.png`: the same against the error-rate ratio (1.5, 2, 5).\n\
             - `false_rollback_rate.png`: realised false-rollback rate per null (groups left \
             to right in the table's order), one bar per method with its Wilson interval; \
             the horizontal black line is 1 %.\n\n\
             ![delay against shift](delay_vs_shift.png)\n\n\
             ![delay against error ratio](delay_vs_error_ratio.png)\n\n\
             ![false-rollback rate per null](false_rollback_rate.png)"
        );
        m
    }

    /// The JSON report.
    ///
    /// # Panics
    /// Never: every field serializes.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}
