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
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
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
