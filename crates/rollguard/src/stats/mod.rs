//! Statistics over samples: rolling windows in time buckets and the deterministic
//! quantile histogram they keep. Nothing here knows about versions, gates or policies.

pub(crate) mod histogram;
pub(crate) mod special;
pub(crate) mod window;

/// The smaller of two values, keeping `a` on a tie. `f64::min` leaves the sign of a
/// `-0.0`/`+0.0` tie to the platform (and is a call in wasm); one comparison is the same
/// everywhere. Values are never NaN here (inputs are checked).
#[inline]
pub(crate) fn lower(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// The larger of two values, keeping `a` on a tie (see [`lower`]).
#[inline]
pub(crate) fn upper(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}
