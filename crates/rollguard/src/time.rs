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

/// 2^52 as a double: adding it to a double in `[0, 2^52)` and taking it off again rounds
/// the double to an integer, so a double that comes back unchanged is one.
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;

/// 2^64 as a double: the first double above every `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// A time given as a JavaScript number (an `f64` of ms), as the `u64` it stands for, or
/// the error for it at `path`. Fractions, negative numbers and NaN are `invalid_json`
/// (the JSON parser refuses them in a document the same way); integers from 2^64 up are
/// `time_out_of_range`. Below that the integer is returned, never rounded, and the range
/// check of every time applies to it where it is used (`time_out_of_range` from 2^53),
/// so a number and the same `u64` are refused alike.
///
/// # Errors
/// As above.
pub fn time_from_number(x: f64, path: &str) -> Result<Timestamp, Error> {
    let fraction = x < TWO_POW_52 && !integer(x);
    if x.is_nan() || x < 0.0 || fraction {
        return Err(Error::new(
            ErrorCode::InvalidJson,
            path,
            format!("a time must be a non-negative integer number of ms, not {x}"),
        ));
    }
    if x >= TWO_POW_64 {
        return Err(Error::new(
            ErrorCode::TimeOutOfRange,
            path,
            format!("time {x} ms is above 2^53-1 ms"),
        ));
    }
    Ok(x as Timestamp)
}

/// A time in a column of samples: `u64` ms, or `f64` ms as JavaScript numbers carry
/// them (the wasm binding hands its `Float64Array` over as it is: converting every row
/// cost more than recording it).
///
/// A column is checked with [`Millis::pair_fine`] on every pair of neighbours and
/// [`Millis::ends_fine`] on its ends, branch-free, so the pass vectorizes (with the
/// sample values' checks, in [`Policy::observe_values`](crate::Policy::observe_values)).
/// A column that passes has only integer times in `[0, TIME_MAX]`, none before the one
/// it follows; one that fails is checked row by row for the exact error (some good
/// columns fail too: see the implementations).
pub(crate) trait Millis: Copy {
    /// Neighbours `a` then `b`: `b` is not before `a`, and `b` is well formed.
    fn pair_fine(a: Self, b: Self) -> bool;
    /// The first and last time: the first is well formed, and both are in range.
    fn ends_fine(first: Self, last: Self) -> bool;
    /// This time in ms, or why it is not one.
    fn exact(self, path: &str) -> Result<Timestamp, Error>;
    /// This time in ms, once it is known to be [`Millis::exact`].
    fn ms(self) -> Timestamp;
}

impl Millis for Timestamp {
    /// Unsigned 64-bit comparisons do not vectorize on x86-64 without SSE4.2 or on wasm,
    /// so: `b` below 2^63, and their wrapping difference without its top bit, which for
    /// two numbers below 2^63 says exactly that `b >= a`. An `a` at or above 2^63 was the
    /// `b` of the pair before, or is the first time.
    #[inline]
    fn pair_fine(a: Self, b: Self) -> bool {
        (b.wrapping_sub(a) | b) >> 63 == 0
    }

    #[inline]
    fn ends_fine(first: Self, last: Self) -> bool {
        first <= TIME_MAX && last <= TIME_MAX
    }

    fn exact(self, _path: &str) -> Result<Timestamp, Error> {
        Ok(self)
    }

    fn ms(self) -> Timestamp {
        self
    }
}

/// Whether a double in `[0, 2^52)` is an integer: adding 2^52 and taking it off again
/// rounds it to one. From 2^52 up every double is an integer, but the odd ones fail
/// this test (and infinity passes it); as times they are 142,000 years after the epoch,
/// and the callers bound the range on their own, so a column holding one is only
/// checked row by row.
#[inline]
pub(crate) fn integer(x: f64) -> bool {
    (x + TWO_POW_52) - TWO_POW_52 == x
}

impl Millis for f64 {
    /// `>=` is false when either is NaN.
    #[inline]
    fn pair_fine(a: Self, b: Self) -> bool {
        (b >= a) & integer(b)
    }

    #[inline]
    fn ends_fine(first: Self, last: Self) -> bool {
        integer(first) & (first >= 0.0) & (last <= TIME_MAX as f64)
    }

    fn exact(self, path: &str) -> Result<Timestamp, Error> {
        time_from_number(self, path)
    }

    fn ms(self) -> Timestamp {
        self as Timestamp
    }
}

/// Whether a column of times passes [`Millis::pair_fine`] and [`Millis::ends_fine`].
#[cfg(test)]
fn column_fine<T: Millis>(at: &[T]) -> bool {
    let (Some(&first), Some(&last)) = (at.first(), at.last()) else {
        return true;
    };
    let pairs = at
        .iter()
        .zip(at.iter().skip(1))
        .fold(true, |ok, (&a, &b)| ok & T::pair_fine(a, b));
    pairs && T::ends_fine(first, last)
}

/// The end of the run of non-decreasing times `at[from..]` that fall before `bound`: the
/// first index at or after `from` whose time is at or past `bound` (or `at.len()`).
///
/// Gallops out from `from` before bisecting, so finding a short run in a long column
/// touches a few cache lines near `from` instead of bisecting the whole rest (which
/// cost a quarter of the column path's time on 200,000-row columns).
pub(crate) fn run_end<T: Millis>(at: &[T], from: usize, bound: Timestamp) -> usize {
    let rest = at.get(from..).unwrap_or_default();
    let before = |t: &T| t.ms() < bound;
    let mut hi = 1;
    while rest.get(hi).is_some_and(before) {
        hi *= 2;
    }
    // Every probe below `hi` was before `bound`, so the run ends in `(hi / 2, hi]`.
    let lo = hi / 2;
    let hi = hi.min(rest.len());
    from + lo + rest.get(lo..hi).unwrap_or_default().partition_point(before)
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
        assert_eq!(run_end::<Timestamp>(&[], 0, 9), 0);
    }

    #[test]
    fn number_times_are_exact_integers_or_refused() {
        for (x, want) in [
            (0.0, Ok(0)),
            (-0.0, Ok(0)),
            (1.0, Ok(1)),
            (TIME_MAX as f64, Ok(TIME_MAX)),
            (4_503_599_627_370_497.0, Ok(4_503_599_627_370_497)), // 2^52 + 1
            (0.5, Err(ErrorCode::InvalidJson)),
            (4_503_599_627_370_495.5, Err(ErrorCode::InvalidJson)), // 2^52 - 0.5
            (-1.0, Err(ErrorCode::InvalidJson)),
            (f64::NAN, Err(ErrorCode::InvalidJson)),
            (f64::NEG_INFINITY, Err(ErrorCode::InvalidJson)),
            (TIME_MAX as f64 + 1.0, Ok(TIME_MAX + 1)), // refused where it is used
            (2e19, Err(ErrorCode::TimeOutOfRange)),    // above 2^64
            (f64::INFINITY, Err(ErrorCode::TimeOutOfRange)),
        ] {
            let got = time_from_number(x, "at").map_err(|e| e.code);
            assert_eq!(got, want, "{x}");
        }
    }

    #[test]
    fn column_checks_never_pass_a_bad_column() {
        let edges = [
            0,
            1,
            5,
            TIME_MAX - 1,
            TIME_MAX,
            TIME_MAX + 1,
            1 << 63,
            u64::MAX,
        ];
        let numbers = [
            0.0,
            -0.0,
            1.0,
            1.5,
            5.0,
            -1.0,
            f64::NAN,
            TIME_MAX as f64,
            1e300,
        ];
        fn columns<T: Copy>(edges: &[T]) -> Vec<Vec<T>> {
            // Every column of up to three edge values.
            let mut all: Vec<Vec<T>> = vec![vec![]];
            for len in 1..=3 {
                let mut next = Vec::new();
                for c in all.iter().filter(|c| c.len() == len - 1) {
                    for t in edges {
                        next.push([c.as_slice(), &[*t]].concat());
                    }
                }
                all.extend(next);
            }
            all
        }
        for at in columns(&edges) {
            let high = at.iter().any(|t| *t > TIME_MAX);
            let backwards = at.windows(2).any(|w| w[1] < w[0]);
            // Exact for these: no false refusals either.
            assert_eq!(column_fine(&at), !(high || backwards), "{at:?}");
        }
        for at in columns(&numbers) {
            let ms: Result<Vec<_>, _> = at.iter().map(|x| time_from_number(*x, "at")).collect();
            let good = ms.is_ok_and(|ms| {
                ms.iter().all(|t| *t <= TIME_MAX) && ms.windows(2).all(|w| w[0] <= w[1])
            });
            let fine = column_fine(&at);
            assert!(good || !fine, "passed {at:?}");
            // Below 2^52 no good column is refused either.
            if at.iter().all(|x| x.is_nan() || x.abs() < TWO_POW_52) {
                assert_eq!(fine, good, "{at:?}");
            }
        }
    }
}
