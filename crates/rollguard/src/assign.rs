//! Sticky, portable traffic assignment: `rollguard-assign-v1`.
//!
//! Which arm a request goes to, from its routing key (a user, session or tenant id), a
//! per-rollout [`Salt`] and the candidate's weight in basis points. The function is
//! specified bit for bit in `docs/assignment.md` so that a router in any language can
//! reproduce it; `tests/assignment/vectors.json` holds the shared vectors that the Rust,
//! Python and JavaScript suites all replay.
//!
//! ```text
//!   h      = fmix64(fnv1a64(salt as 8 little-endian bytes ‖ key bytes))
//!   bucket = ((h >> 32) * 10000) >> 32                        in 0..=9999
//!   arm    = candidate if bucket < weight_bp, else stable
//! ```
//!
//! A key's bucket does not depend on the weight, so the assignment is sticky (the same
//! key, salt and weight always give the same arm) and monotone in the weight: raising the
//! weight from 5 % to 25 % keeps every key that was on the candidate there, weight 0
//! sends every key to stable and 10 000 every key to the candidate. A new salt (a new
//! rollout, [`salt_for`]) reshuffles the keys.
//!
//! The hash is written out here rather than taken from a crate: FNV-1a and MurmurHash3's
//! finalizer are ten lines, their constants are part of the spec, and a dependency could
//! change its output in a minor release (`std`'s `DefaultHasher` is documented to), which
//! would silently move users between arms.
//!
//! These are pure functions. [`Policy::assign`](crate::Policy::assign) applies them with
//! the rollout's salt (kept in the policy's state and snapshot) and the weight it routes.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorCode};

/// The name of this assignment function; a different function would be a new name.
pub const ASSIGN_VERSION: &str = "rollguard-assign-v1";

/// The number of buckets, and the largest weight in basis points (100 %).
pub const WEIGHT_BP_MAX: u32 = 10_000;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits, continuing from `h` (start from [`FNV_OFFSET`]).
fn fnv1a64(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finalizer: FNV-1a's low bits mix poorly, its high bits (which the
/// bucket reads) after it mix well.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The 64-bit hash of a key under a salt, before it is cut into a bucket.
fn hash(salt: Salt, key: &[u8]) -> u64 {
    fmix64(fnv1a64(fnv1a64(FNV_OFFSET, &salt.0.to_le_bytes()), key))
}

/// A rollout's salt: 64 bits that decide which keys go to the candidate.
///
/// In JSON and in the Python and JavaScript APIs a salt is a string of exactly 16
/// lowercase hexadecimal digits (`"0123456789abcdef"`), since a JavaScript number
/// cannot hold 64 bits; [`Display`](fmt::Display) writes that form and
/// [`Salt::from_hex`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Salt(pub u64);

impl Salt {
    /// Reads a salt from exactly 16 lowercase hexadecimal digits.
    ///
    /// # Errors
    /// `invalid_salt` at path `salt` for anything else: another length, uppercase digits,
    /// a `0x` prefix, a sign or whitespace.
    ///
    /// # Example
    /// ```
    /// use rollguard::Salt;
    /// assert_eq!(Salt::from_hex("00000000000000ff")?, Salt(255));
    /// assert_eq!(Salt::from_hex("FF").unwrap_err().code.as_str(), "invalid_salt");
    /// # Ok::<(), rollguard::Error>(())
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let digits = text.as_bytes();
        let mut x = 0u64;
        let mut fine = digits.len() == 16;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                _ => {
                    fine = false;
                    0
                }
            };
            x = (x << 4) | u64::from(v);
        }
        if !fine {
            return Err(Error::new(
                ErrorCode::InvalidSalt,
                "salt",
                format!("a salt is 16 lowercase hex digits, not {text:?}"),
            ));
        }
        Ok(Self(x))
    }

    /// The salt as 16 lowercase hexadecimal digits.
    pub fn to_hex(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Salt {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_hex(s)
    }
}

impl Serialize for Salt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Which side of the split a key is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The stable version.
    Stable,
    /// The candidate version.
    Candidate,
}

impl Arm {
    /// `"stable"` or `"candidate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Candidate => "candidate",
        }
    }
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key's bucket under a salt, in `0..=9999`: the key goes to the candidate while the
/// candidate's weight in basis points is above it. It does not depend on the weight.
///
/// A key is any bytes; a string key is its UTF-8 bytes. Linear in the key's length.
///
/// # Example
/// ```
/// use rollguard::{Salt, bucket};
/// assert_eq!(bucket(Salt(0), "user-42"), 5312);
/// assert_eq!(bucket(Salt(0), b"user-42"), 5312);
/// ```
pub fn bucket(salt: Salt, key: impl AsRef<[u8]>) -> u32 {
    // (h >> 32) < 2^32, so the product is below 2^46 and the result below 10000.
    (((hash(salt, key.as_ref()) >> 32) * u64::from(WEIGHT_BP_MAX)) >> 32) as u32
}

/// The arm of a key: [`Arm::Candidate`] iff its [`bucket`] is below `weight_bp`, the
/// candidate's share of traffic in basis points (percent × 100).
///
/// # Errors
/// `weight_out_of_range` at path `weight_bp` for a weight above 10 000.
///
/// # Example
/// ```
/// use rollguard::{Arm, Salt, assign};
/// let salt = Salt::from_hex("0000000000000000")?;
/// assert_eq!(assign(salt, "user-42", 2500)?, Arm::Stable); // bucket 5312
/// assert_eq!(assign(salt, "user-42", 5313)?, Arm::Candidate);
/// assert_eq!(assign(salt, "user-42", 10_000)?, Arm::Candidate);
/// # Ok::<(), rollguard::Error>(())
/// ```
pub fn assign(salt: Salt, key: impl AsRef<[u8]>, weight_bp: u32) -> Result<Arm, Error> {
    let weight_bp = weight_bp_from_i64(i64::from(weight_bp))?;
    Ok(if bucket(salt, key) < weight_bp {
        Arm::Candidate
    } else {
        Arm::Stable
    })
}

/// A weight in basis points from an integer of a binding (a Python `int`).
///
/// # Errors
/// `weight_out_of_range` at path `weight_bp` outside `0..=10000`.
pub fn weight_bp_from_i64(x: i64) -> Result<u32, Error> {
    if !(0..=i64::from(WEIGHT_BP_MAX)).contains(&x) {
        return Err(Error::new(
            ErrorCode::WeightOutOfRange,
            "weight_bp",
            format!("a weight is 0..=10000 basis points, not {x}"),
        ));
    }
    Ok(x as u32)
}

/// A weight in basis points from a JavaScript number.
///
/// # Errors
/// `invalid_json` at path `weight_bp` for NaN, an infinity or a fraction;
/// `weight_out_of_range` for an integer outside `0..=10000`.
pub fn weight_bp_from_number(x: f64) -> Result<u32, Error> {
    if !x.is_finite() || x.fract() != 0.0 {
        return Err(Error::new(
            ErrorCode::InvalidJson,
            "weight_bp",
            format!("a weight is an integer number of basis points, not {x}"),
        ));
    }
    // Saturating: every double beyond the i64 range is out of range too.
    weight_bp_from_i64(x as i64)
}

/// A rollout's salt, derived from the policy's name, the candidate version's id and the
/// rollout's sequence number: `fmix64(fnv1a64("rollguard-salt-v1" 0x00 name 0x00
/// version 0x00 seq as 8 little-endian bytes))`.
///
/// Deterministic (the core draws no random numbers): the same rollout always gets the
/// same salt, and the next rollout of the same version (`rollout_seq + 1`) a new one.
/// A name or version containing a NUL byte can give the salt of another pair.
///
/// # Example
/// ```
/// use rollguard::salt_for;
/// assert_eq!(salt_for("checkout", "v2", 1).to_hex(), "2c8e44f195891421");
/// ```
pub fn salt_for(policy_name: &str, version_id: &str, rollout_seq: u64) -> Salt {
    let mut h = fnv1a64(FNV_OFFSET, b"rollguard-salt-v1\0");
    h = fnv1a64(h, policy_name.as_bytes());
    h = fnv1a64(h, b"\0");
    h = fnv1a64(h, version_id.as_bytes());
    h = fnv1a64(h, b"\0");
    h = fnv1a64(h, &rollout_seq.to_le_bytes());
    Salt(fmix64(h))
}

/// 2^53 as a double.
const TWO_POW_53: f64 = 9_007_199_254_740_992.0;

/// A rollout sequence number from a JavaScript number (a `bigint` converts directly).
///
/// # Errors
/// `invalid_json` at path `rollout_seq` for NaN, a negative number or a fraction;
/// `count_out_of_range` from 2^53, where a number no longer holds every integer.
pub fn rollout_seq_from_number(x: f64) -> Result<u64, Error> {
    if x.is_nan() || x < 0.0 || x.fract() != 0.0 {
        return Err(Error::new(
            ErrorCode::InvalidJson,
            "rollout_seq",
            format!("a rollout_seq is a non-negative integer, not {x}"),
        ));
    }
    if x >= TWO_POW_53 {
        return Err(Error::new(
            ErrorCode::CountOutOfRange,
            "rollout_seq",
            format!("rollout_seq {x} is at or above 2^53; pass a bigint"),
        ));
    }
    Ok(x as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_its_published_vectors() {
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_hash_matches_the_shared_vectors() {
        // The vectors' intermediate hash (the integration test checks bucket and arm).
        let text = include_str!("../../../tests/assignment/vectors.json");
        let v: serde_json::Value = serde_json::from_str(text).expect("vectors parse");
        let cases = v["cases"].as_array().expect("cases");
        for c in cases {
            let salt = Salt::from_hex(c["salt"].as_str().expect("salt")).expect("salt parses");
            let key = match c.get("key") {
                Some(k) => k.as_str().expect("key").as_bytes().to_vec(),
                None => unhex(c["key_hex"].as_str().expect("key_hex")),
            };
            assert_eq!(format!("{:016x}", hash(salt, &key)), c["hash"], "{c}");
        }
        assert!(cases.len() >= 60);
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn a_salt_round_trips_through_its_hex_and_json() {
        for x in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            let s = Salt(x);
            assert_eq!(Salt::from_hex(&s.to_hex()), Ok(s));
            let json = serde_json::to_string(&s).expect("serializes");
            assert_eq!(json.len(), 18);
            assert_eq!(serde_json::from_str::<Salt>(&json).expect("parses"), s);
        }
        assert!(serde_json::from_str::<Salt>("\"0x01\"").is_err());
        assert!(serde_json::from_str::<Salt>("1").is_err());
    }

    #[test]
    fn weights_from_numbers_refuse_what_is_not_a_weight() {
        assert_eq!(weight_bp_from_number(2500.0), Ok(2500));
        assert_eq!(weight_bp_from_number(0.0), Ok(0));
        assert_eq!(weight_bp_from_number(-0.0), Ok(0));
        for (x, code) in [
            (0.5, ErrorCode::InvalidJson),
            (f64::NAN, ErrorCode::InvalidJson),
            (f64::INFINITY, ErrorCode::InvalidJson),
            (-1.0, ErrorCode::WeightOutOfRange),
            (10_001.0, ErrorCode::WeightOutOfRange),
            (1e300, ErrorCode::WeightOutOfRange),
            (-1e300, ErrorCode::WeightOutOfRange),
        ] {
            let e = weight_bp_from_number(x).expect_err("refused");
            assert_eq!((e.code, e.path.as_str()), (code, "weight_bp"), "{x}");
        }
        assert_eq!(
            weight_bp_from_i64(i64::MIN).map_err(|e| e.code),
            Err(ErrorCode::WeightOutOfRange)
        );
        assert_eq!(
            assign(Salt(0), "k", 10_001).map_err(|e| e.code),
            Err(ErrorCode::WeightOutOfRange)
        );
    }

    #[test]
    fn rollout_seqs_from_numbers_are_exact_integers() {
        assert_eq!(rollout_seq_from_number(7.0), Ok(7));
        assert_eq!(rollout_seq_from_number(TWO_POW_53 - 1.0), Ok((1 << 53) - 1));
        for (x, code) in [
            (-1.0, ErrorCode::InvalidJson),
            (1.5, ErrorCode::InvalidJson),
            (f64::NAN, ErrorCode::InvalidJson),
            (TWO_POW_53, ErrorCode::CountOutOfRange),
            (f64::INFINITY, ErrorCode::InvalidJson),
            (1e300, ErrorCode::CountOutOfRange),
        ] {
            let e = rollout_seq_from_number(x).expect_err("refused");
            assert_eq!((e.code, e.path.as_str()), (code, "rollout_seq"), "{x}");
        }
    }
}
