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

/// The end of the run of non-decreasing times `at[from..]` that fall before `bound`: the
/// first index at or after `from` whose time is at or past `bound` (or `at.len()`).
///
/// Gallops out from `from` before bisecting, so finding a short run in a long column
/// touches a few cache lines near `from` instead of bisecting the whole rest (which
/// cost a quarter of the column path's time on 200,000-row columns).
pub(crate) fn run_end(at: &[Timestamp], from: usize, bound: Timestamp) -> usize {
    let rest = at.get(from..).unwrap_or_default();
    let mut hi = 1;
    while rest.get(hi).is_some_and(|t| *t < bound) {
        hi *= 2;
    }
    // Every probe below `hi` was before `bound`, so the run ends in `(hi / 2, hi]`.
    let lo = hi / 2;
    let hi = hi.min(rest.len());
    from + lo
        + rest
            .get(lo..hi)
            .unwrap_or_default()
            .partition_point(|t| *t < bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_end_agrees_with_bisection() {
        let at: Vec<Timestamp> = (0..300u64).map(|i| i / 3 * 5).collect();
        for from in 0..=at.len() {
            for bound in 0..=at.last().map_or(0, |t| t + 6) {
                let want = from + at[from..].partition_point(|t| *t < bound);
                assert_eq!(run_end(&at, from, bound), want, "from {from} bound {bound}");
            }
        }
        assert_eq!(run_end(&[], 0, 9), 0);
    }
}
