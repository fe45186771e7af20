//! `rollguard-detection`: runs the detection benchmark and writes its report.
//!
//! ```text
//! cargo run --release -p rollguard-detection -- [--quick] [--out DIR] [--seed N]
//!     [--reps N] [--alt-reps N] [--horizon-min M] [--rate R] [--weight W]
//!     [--methods a,b] [--scenarios a,b]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use rollguard_detection::stream::{Traffic, scenarios};
use rollguard_detection::{Settings, method::methods, plot, run};

const USAGE: &str = "usage: rollguard-detection [--quick] [--out DIR] [--seed N] [--reps N] \
[--alt-reps N] [--horizon-min M] [--rate R] [--weight W] [--methods a,b] [--scenarios a,b]";

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
) -> Result<T, String> {
    args.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
}

fn real_main() -> Result<(), String> {
    let mut quick = false;
    let mut out = PathBuf::from("target/detection");
    let mut seed = 20_260_905u64;
    let (mut reps, mut alt_reps, mut horizon_min) = (None, None, None);
    let mut rate: f64 = 40.0;
    let mut weight: u32 = 50;
    let mut only_methods: Option<Vec<String>> = None;
    let mut only_scenarios: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = value::<PathBuf>(&mut args, "--out")?,
            "--seed" => seed = value(&mut args, "--seed")?,
            "--reps" => reps = Some(value(&mut args, "--reps")?),
            "--alt-reps" => alt_reps = Some(value(&mut args, "--alt-reps")?),
            "--horizon-min" => horizon_min = Some(value(&mut args, "--horizon-min")?),
            "--rate" => rate = value(&mut args, "--rate")?,
            "--weight" => weight = value(&mut args, "--weight")?,
            "--methods" => {
                only_methods = Some(
                    value::<String>(&mut args, "--methods")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            "--scenarios" => {
                only_scenarios = Some(
                    value::<String>(&mut args, "--scenarios")?
                        .split(',')
                        .map(String::from)
                        .collect(),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !(1..=99).contains(&weight) || !rate.is_finite() || rate <= 0.0 {
        return Err("--weight must be 1..=99 and --rate positive".into());
    }
    let settings = Settings {
        mode: if quick { "quick" } else { "full" }.into(),
        seed,
        null_reps: reps.unwrap_or(if quick { 100 } else { 1000 }),
        alternative_reps: alt_reps.unwrap_or(if quick { 50 } else { 1000 }),
        horizon_s: 60 * horizon_min.unwrap_or(if quick { 30 } else { 60 }),
        traffic: Traffic {
            requests_per_s: rate,
            weight,
        },
    };
    let mut all_methods = methods();
    let mut left_out = Vec::new();
    if let Some(names) = &only_methods {
        all_methods.retain(|m| names.contains(&m.name));
    } else if quick {
        // Methods on a short evaluation grid run in full mode, or when named.
        left_out = all_methods
            .iter()
            .filter(|m| !m.quick)
            .map(|m| m.name.clone())
            .collect();
        all_methods.retain(|m| m.quick);
    }
    let mut all_scenarios = scenarios();
    if let Some(names) = &only_scenarios {
        all_scenarios.retain(|s| names.iter().any(|n| n == s.name));
    }
    if all_methods.is_empty() || all_scenarios.is_empty() {
        return Err("no method or no scenario selected".into());
    }
    if !left_out.is_empty() {
        eprintln!(
            "--quick leaves out {} (name it with --methods to run it)",
            left_out.join(", ")
        );
    }
    #[allow(clippy::disallowed_methods)] // the one clock: the run's stopwatch
    let started = std::time::Instant::now();
    let mut report = run(&settings, &all_scenarios, &all_methods, |s, cells| {
        let rates: Vec<String> = cells
            .iter()
            .map(|c| format!("{} {:.1} %", c.method, 100.0 * c.rate))
            .collect();
        eprintln!(
            "[{:>5.1} s] {} ({}): {}",
            started.elapsed().as_secs_f64(),
            s.name,
            if s.is_null() {
                "false rollbacks"
            } else {
                "detected"
            },
            rates.join(", ")
        );
    })?;
    report.runtime_s = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let md = report.markdown();
    std::fs::write(out.join("detection.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(out.join("detection.json"), report.json()).map_err(|e| e.to_string())?;
    let text = plot::register_font();
    plot::write_plots(&report, &out, text).map_err(|e| format!("plots: {e}"))?;
    println!("{md}");
    eprintln!(
        "wrote {}/detection.md, detection.json and 3 PNG plots{} in {:.1} s",
        out.display(),
        if text {
            ""
        } else {
            " (no font found: plots without text)"
        },
        report.runtime_s
    );
    Ok(())
}
