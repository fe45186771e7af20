//! `threshold`: absolute bounds on a window statistic (Flagger's `thresholdRange`).

/// The bounds a `threshold` rule judges against: its own.
pub(super) fn bounds(min: Option<f64>, max: Option<f64>) -> (Option<f64>, Option<f64>) {
    (min, max)
}
