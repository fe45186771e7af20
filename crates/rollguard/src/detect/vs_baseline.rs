//! `vs_baseline`: bounds relative to the baseline arm's same statistic.

use crate::config::Rule;

/// The bounds a `vs_baseline` rule sets around baseline value `b`, or `None` when no
/// bound is left (only ratio bounds, of a zero baseline without `baseline_min`; or
/// every bound overflowed).
pub(super) fn bounds(rule: &Rule, b: f64) -> Option<(Option<f64>, Option<f64>)> {
    let Rule::VsBaseline {
        max_ratio,
        min_ratio,
        max_increase,
        max_decrease,
        baseline_min,
    } = *rule
    else {
        return None;
    };
    // Ratios are taken of the floored baseline; of a zero baseline, with no floor, they
    // are left out (see `Rule::VsBaseline::baseline_min`).
    let base = match baseline_min {
        Some(floor) if b < floor => Some(floor),
        _ => Some(b).filter(|b| *b != 0.0),
    };
    let ratio = |r: Option<f64>| r.zip(base).map(|(r, base)| base * r);
    let upper = [ratio(max_ratio), max_increase.map(|d| b + d)];
    let lower = [ratio(min_ratio), max_decrease.map(|d| b - d)];
    // A bound that overflows (a huge baseline times a ratio) bounds nothing.
    let finite = |x: &f64| x.is_finite();
    let bounds = (
        lower.into_iter().flatten().filter(finite).reduce(f64::max),
        upper.into_iter().flatten().filter(finite).reduce(f64::min),
    );
    (bounds != (None, None)).then_some(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(max_ratio: Option<f64>, max_increase: Option<f64>, floor: Option<f64>) -> Rule {
        Rule::VsBaseline {
            max_ratio,
            min_ratio: None,
            max_increase,
            max_decrease: None,
            baseline_min: floor,
        }
    }

    #[test]
    fn the_tightest_bound_applies() {
        let r = rule(Some(1.5), Some(10.0), None);
        assert_eq!(bounds(&r, 100.0), Some((None, Some(110.0))));
        assert_eq!(bounds(&r, 10.0), Some((None, Some(15.0))));
    }

    #[test]
    fn a_zero_baseline_leaves_out_ratios_unless_floored() {
        assert_eq!(bounds(&rule(Some(2.0), None, None), 0.0), None);
        assert_eq!(
            bounds(&rule(Some(2.0), Some(0.01), None), 0.0),
            Some((None, Some(0.01)))
        );
        assert_eq!(
            bounds(&rule(Some(2.0), None, Some(0.001)), 0.0),
            Some((None, Some(0.002)))
        );
    }

    #[test]
    fn an_overflowing_bound_bounds_nothing() {
        assert_eq!(bounds(&rule(Some(10.0), None, None), f64::MAX), None);
    }
}
