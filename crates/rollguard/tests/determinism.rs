//! Guards for bit-identical decisions across platforms and bindings.
//!
//! Native std math (glibc) and wasm32's differ in up to ~18 % of results for
//! exp/ln/pow/sin/… (shared/TOOLCHAIN.md §6), so nothing in the core may call them:
//! transcendental functions go through the pure-Rust `libm` crate. clippy's
//! `disallowed-methods` (clippy.toml) catches typed calls; this test also catches the
//! ones clippy cannot see, such as calls through a generic or a macro, by reading the
//! source.

use std::fs;
use std::path::Path;

/// Method calls that lower to the platform's libm (or FMA) on some targets.
const PLATFORM_MATH: &[&str] = &[
    ".exp(",
    ".exp2(",
    ".exp_m1(",
    ".ln(",
    ".ln_1p(",
    ".log(",
    ".log2(",
    ".log10(",
    ".powf(",
    ".powi(",
    ".sin(",
    ".cos(",
    ".tan(",
    ".asin(",
    ".acos(",
    ".atan(",
    ".atan2(",
    ".sinh(",
    ".cosh(",
    ".tanh(",
    ".hypot(",
    ".cbrt(",
    ".mul_add(",
    "f64::exp",
    "f64::ln",
    "f64::powf",
];

#[test]
fn core_sources_use_no_platform_math() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut files = 0;
    let mut dirs = vec![src.clone()];
    let mut sources = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    for path in sources {
        files += 1;
        let text = fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in PLATFORM_MATH {
                if code.contains(pat) {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        files >= 10,
        "read only {files} source files from {}",
        src.display()
    );
    assert!(
        offenders.is_empty(),
        "platform math in the core:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_guard_recognises_platform_math() {
    // The scan above must be able to fail: check that it flags a known offender.
    let line = "let y = x.exp();";
    assert!(PLATFORM_MATH.iter().any(|p| line.contains(p)));
}

#[test]
fn floats_survive_json_bit_for_bit() {
    // serde_json's default parser can be 1 ulp off; the workspace enables its
    // `float_roundtrip` feature so snapshots and inputs replay bit for bit. These values
    // were misparsed without it.
    use rollguard::{Input, Policy, Sample};
    let config = r#"{"format_version": 1, "versions": [{"id": "v1", "digest": "d", "validated": true}],
        "stable": "v1", "metrics": [{"name": "m", "kind": "value"}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 5}]}}"#;
    let mut p = Policy::from_json(config, 0).unwrap();
    for (t, x) in [
        30.174078628186514,
        0.1 + 0.2,
        1.0 / 3.0,
        2.2250738585072014e-308,
        123456.78901234567,
    ]
    .into_iter()
    .enumerate()
    {
        let sample = Sample::value(t as u64, "v1", "m", x);
        let back =
            Input::from_json(&serde_json::to_string(&Input::Observe(sample.clone())).unwrap());
        assert_eq!(back.unwrap(), Input::Observe(sample.clone()), "{x:e}");
        let _ = p.observe(&sample).unwrap();
    }
    assert_eq!(Policy::restore_json(&p.snapshot().to_json()).unwrap(), p);
}
