//! Traffic assignment (`rollguard-assign-v1`, docs/assignment.md): the shared vectors,
//! its properties (monotone in the weight, the ends of the range), and its statistics on
//! 100 000 deterministic keys (the candidate's share, uniform buckets, a new salt
//! reshuffling), each against a threshold computed for a false-failure rate of 1e-6.

use proptest::prelude::*;
use rollguard::{
    ASSIGN_VERSION, Arm, ErrorCode, Salt, WEIGHT_BP_MAX, assign, bucket, salt_for,
    weight_bp_from_i64,
};
use serde_json::Value;

// ------------------------------------------------------------------ vectors

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/assignment/vectors.json"
    );
    let text = std::fs::read_to_string(path).expect("tests/assignment/vectors.json");
    serde_json::from_str(&text).expect("the vectors parse")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "{s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_vector_case_gives_its_bucket_and_arm() {
    let v = vectors();
    assert_eq!(v["name"], ASSIGN_VERSION);
    let cases = v["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for c in cases {
        let salt = Salt::from_hex(c["salt"].as_str().expect("salt")).expect("a good salt");
        let key = match (c.get("key"), c.get("key_hex")) {
            (Some(k), None) => k.as_str().expect("key").as_bytes().to_vec(),
            (None, Some(h)) => unhex(h.as_str().expect("key_hex")),
            _ => panic!("a case has key or key_hex: {c}"),
        };
        let weight = u32::try_from(c["weight_bp"].as_u64().expect("weight_bp")).expect("u32");
        assert_eq!(u64::from(bucket(salt, &key)), c["bucket"], "{c}");
        let arm = assign(salt, &key, weight).expect("a good weight");
        assert_eq!(arm.as_str(), c["arm"], "{c}");
        assert_eq!(serde_json::to_value(arm).expect("serializes"), c["arm"]);
    }
}

#[test]
fn every_vector_salt_is_derived_from_its_rollout() {
    let v = vectors();
    let salts = v["salts"].as_array().expect("salts");
    assert!(salts.len() >= 5);
    for s in salts {
        let salt = salt_for(
            s["policy_name"].as_str().expect("policy_name"),
            s["version_id"].as_str().expect("version_id"),
            s["rollout_seq"].as_u64().expect("rollout_seq"),
        );
        assert_eq!(salt.to_hex(), s["salt"], "{s}");
    }
}

#[test]
fn every_vector_error_is_refused_with_its_code_and_path() {
    let v = vectors();
    let errors = v["errors"].as_array().expect("errors");
    assert!(errors.len() >= 10);
    for e in errors {
        // The salt is read first, then the weight (as every binding does).
        let got = Salt::from_hex(e["salt"].as_str().expect("salt")).and_then(|salt| {
            let w = weight_bp_from_i64(e["weight_bp"].as_i64().expect("weight_bp"))?;
            assign(salt, "key", w)
        });
        let err = got.expect_err("refused");
        assert_eq!(err.code.as_str(), e["code"], "{e}");
        assert_eq!(err.path, e["path"], "{e}");
    }
}

// ------------------------------------------------------------------ properties

proptest! {
    #[test]
    fn assignment_is_monotone_in_the_weight(
        salt in any::<u64>(),
        key in proptest::collection::vec(any::<u8>(), 0..64),
        a in 0..=WEIGHT_BP_MAX,
        b in 0..=WEIGHT_BP_MAX,
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let salt = Salt(salt);
        if assign(salt, &key, low).unwrap() == Arm::Candidate {
            prop_assert_eq!(assign(salt, &key, high).unwrap(), Arm::Candidate);
        }
        if assign(salt, &key, high).unwrap() == Arm::Stable {
            prop_assert_eq!(assign(salt, &key, low).unwrap(), Arm::Stable);
        }
    }

    #[test]
    fn weight_0_is_stable_and_10000_candidate_and_the_bucket_is_the_threshold(
        salt in any::<u64>(),
        key in ".{0,40}",
    ) {
        let salt = Salt(salt);
        let b = bucket(salt, &key);
        prop_assert!(b < WEIGHT_BP_MAX);
        prop_assert_eq!(assign(salt, &key, 0).unwrap(), Arm::Stable);
        prop_assert_eq!(assign(salt, &key, WEIGHT_BP_MAX).unwrap(), Arm::Candidate);
        // The key moves to the candidate exactly when the weight passes its bucket.
        prop_assert_eq!(assign(salt, &key, b).unwrap(), Arm::Stable);
        prop_assert_eq!(assign(salt, &key, b + 1).unwrap(), Arm::Candidate);
        // A string key is its UTF-8 bytes.
        prop_assert_eq!(bucket(salt, key.as_bytes()), b);
    }

    #[test]
    fn a_salt_reads_back_from_its_hex(x in any::<u64>()) {
        let hex = Salt(x).to_hex();
        prop_assert_eq!(hex.len(), 16);
        prop_assert_eq!(Salt::from_hex(&hex).unwrap(), Salt(x));
        prop_assert_eq!(
            Salt::from_hex(&hex.to_uppercase()).map_err(|e| e.code),
            if hex.bytes().any(|c| c.is_ascii_alphabetic()) { Err(ErrorCode::InvalidSalt) } else { Ok(Salt(x)) }
        );
    }
}

// ------------------------------------------------------------------ statistics

/// Keys per statistical test.
const N: u32 = 100_000;

/// The false-failure rate of each statistical test: they are deterministic, so this is
/// the chance that a correct hash would have failed them for the chosen keys.
const P_FAIL: f64 = 1e-6;

/// The upper standard normal quantile: z with P(Z > z) = p, by bisection on erfc.
fn z_upper(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * libm::erfc(mid / core::f64::consts::SQRT_2) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The chi-square critical value with `k` degrees of freedom at upper tail `p`
/// (Wilson-Hilferty: within 0.5 % of the exact quantile for k ≈ 100).
fn chi_square_critical(k: f64, p: f64) -> f64 {
    let c = 2.0 / (9.0 * k);
    let x = 1.0 - c + z_upper(p) * c.sqrt();
    k * x * x * x
}

/// Sequential keys (`user-0`, `user-1`, ...: FNV's hardest case, keys that differ in
/// their last bytes) and 36-byte UUID-like keys from a seeded SplitMix64.
fn key_sets() -> [(&'static str, Vec<Vec<u8>>); 2] {
    let sequential = (0..N).map(|i| format!("user-{i}").into_bytes()).collect();
    let mut state = 0x5eed_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let uuids = (0..N)
        .map(|_| {
            let (a, b) = (next(), next());
            format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff
            )
            .into_bytes()
        })
        .collect();
    [("sequential", sequential), ("uuid", uuids)]
}

const SALTS: [Salt; 3] = [Salt(0), Salt(u64::MAX), Salt(0x0123_4567_89ab_cdef)];

/// |successes − n·p| within the two-sided `P_FAIL` band of a binomial (normal
/// approximation: n·p·(1−p) is in the tens of thousands here).
fn assert_binomial(what: &str, successes: u32, p: f64) {
    let n = f64::from(N);
    let sd = (n * p * (1.0 - p)).sqrt();
    let z = (f64::from(successes) - n * p) / sd;
    let limit = z_upper(P_FAIL / 2.0);
    assert!(
        z.abs() < limit,
        "{what}: {successes} of {N}, z = {z:.2}, limit {limit:.2}"
    );
}

#[test]
fn the_candidate_gets_its_share_of_keys() {
    let sample_keys = key_sets()[0].1.len();
    assert_eq!(sample_keys, N as usize);
    for (name, keys) in key_sets() {
        for salt in SALTS {
            for weight in [500, 2500, 5000] {
                let on = keys
                    .iter()
                    .filter(|k| assign(salt, k, weight).unwrap() == Arm::Candidate)
                    .count() as u32;
                let p = f64::from(weight) / f64::from(WEIGHT_BP_MAX);
                assert_binomial(&format!("{name} keys, {salt}, {weight} bp"), on, p);
            }
        }
    }
}

#[test]
fn buckets_are_uniform_over_100_bins() {
    let critical = chi_square_critical(99.0, P_FAIL);
    // The threshold is what a chi-square table gives at 99 degrees of freedom.
    assert!((175.0..190.0).contains(&critical), "{critical}");
    for (name, keys) in key_sets() {
        for salt in SALTS {
            let mut bins = [0u32; 100];
            for k in &keys {
                bins[(bucket(salt, k) / 100) as usize] += 1;
            }
            let expected = f64::from(N) / 100.0;
            let chi2: f64 = bins
                .iter()
                .map(|&o| {
                    let d = f64::from(o) - expected;
                    d * d / expected
                })
                .sum();
            assert!(
                chi2 < critical,
                "{name} keys, {salt}: chi-square {chi2:.1} ≥ {critical:.1}; bins {bins:?}"
            );
        }
    }
}

#[test]
fn a_new_salt_reshuffles_about_half_of_the_keys_at_50_percent() {
    for (name, keys) in key_sets() {
        for (a, b) in [
            (SALTS[0], SALTS[1]),
            (salt_for("checkout", "v2", 1), salt_for("checkout", "v2", 2)),
        ] {
            let agree = keys
                .iter()
                .filter(|k| assign(a, k, 5000).unwrap() == assign(b, k, 5000).unwrap())
                .count() as u32;
            assert_binomial(&format!("{name} keys, {a} against {b}"), agree, 0.5);
        }
    }
}

#[test]
fn raising_the_weight_keeps_the_keys_already_on_the_candidate() {
    // The story of a rollout: 5 % → 25 % → rollback (0 %).
    let salt = salt_for("checkout", "v2", 1);
    let keys = &key_sets()[1].1;
    let on = |w: u32| -> Vec<bool> {
        keys.iter()
            .map(|k| assign(salt, k, w).unwrap() == Arm::Candidate)
            .collect()
    };
    let (at5, at25, at0) = (on(500), on(2500), on(0));
    assert!(at5.iter().zip(&at25).all(|(&a, &b)| !a || b));
    assert!(at5.iter().filter(|&&a| a).count() > 4000);
    assert!(at0.iter().all(|&a| !a));
}

#[test]
fn rollouts_get_distinct_salts() {
    let mut salts: Vec<u64> = (0..N as u64)
        .map(|seq| salt_for("checkout", "v2", seq).0)
        .chain(
            ["v1", "v3", "v10"]
                .iter()
                .map(|v| salt_for("checkout", v, 1).0),
        )
        .collect();
    let n = salts.len();
    salts.sort_unstable();
    salts.dedup();
    assert_eq!(salts.len(), n);
}
