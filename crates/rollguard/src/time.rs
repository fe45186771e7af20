//! Time is a value: `u64` milliseconds on a clock the caller chooses (Unix epoch or
//! a replay's own zero). The core never reads a clock.

use crate::error::{Error, ErrorCode};

/// Milliseconds since the caller's epoch.
pub type Timestamp = u64;

/// The largest accepted time: 2^53 − 1 ms, the last integer JavaScript and JSON
/// parsers in every binding represent exactly (about 285,000 years after the epoch).
pub const TIME_MAX: Timestamp = (1 << 53) - 1;

/// Checks that `at` is representable in every binding.
pub(crate) fn check_time(at: Timestamp, path: &str) -> Result<(), Error> {
    if at > TIME_MAX {
        return Err(Error::new(
            ErrorCode::TimeOutOfRange,
            path,
            format!("time {at} ms is above 2^53-1 ms"),
        ));
    }
    Ok(())
}

/// `a + b`, saturating at [`TIME_MAX`] so deadlines never wrap.
pub(crate) fn later(a: Timestamp, b: u64) -> Timestamp {
    a.saturating_add(b).min(TIME_MAX)
}

/// The next run of a periodic timer, `a + b`, or `None` when it cannot come after `a`:
/// time never passes [`TIME_MAX`], and a timer re-armed at `now` would fire forever.
pub(crate) fn next_period(a: Timestamp, b: u64) -> Option<Timestamp> {
    Some(later(a, b)).filter(|t| *t > a)
}
