//! Special functions for the statistical detectors, computed the same way on every
//! target.
//!
//! Every transcendental goes through the pure-Rust `libm` crate (pinned exactly): the
//! platform's `ln`/`exp` differ between x86_64 and wasm32 on some inputs, and an
//! e-value that crosses its threshold on one platform and not on another would be a
//! different decision. No `mul_add` either (FMA rounds once, two operations twice).
//! Nothing here is correctly rounded; it is a pure function of the input bits, which
//! is what determinism needs. Accuracy is checked against SciPy's values in the tests.
//!
//! statrs would give `ln_gamma` and `beta_reg`, but not the log of an upper tail
//! without cancellation, and its `beta_reg` takes up to thousands of iterations with
//! no bound we control; the two functions needed are short enough to own.

/// ln Γ(x) for x > 0.
#[inline]
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b), for a, b > 0. Its absolute error is a
/// few ulps of the largest ln Γ term (1e-9 at a + b = 10^6).
#[inline]
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Most terms of the continued fraction. It converges in O(√max(a, b)) terms, so this
/// bound is met only beyond about 10^8 events; past it the result is what the
/// fraction reached (still the same bits everywhere).
const CF_TERMS_MAX: u32 = 10_000;

/// ln(1 − I_x(a, b)): the log of the regularized incomplete beta function's upper
/// tail, the probability that a Beta(a, b) variable exceeds `x`, for a, b > 0 and
/// 0 < x < 1. Accurate in relative terms however small the tail is (no `1 − I`
/// cancellation and no underflow: the tail is computed as I_{1−x}(b, a) in logs when
/// it is the smaller side).
pub(crate) fn ln_beta_upper(a: f64, b: f64, x: f64) -> f64 {
    // ln of x^a (1−x)^b / B(a, b), the common front factor.
    let front = a * libm::log(x) + b * libm::log1p(-x) - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        // I_x(a, b) converges fast here; the tail is 1 − I.
        let lower = libm::exp(front - libm::log(a) + libm::log(beta_fraction(a, b, x)));
        libm::log1p(-lower)
    } else {
        // The tail is I_{1−x}(b, a), which converges fast here.
        front - libm::log(b) + libm::log(beta_fraction(b, a, 1.0 - x))
    }
}

/// ln Φ(z), the log of the standard normal distribution function, accurate in relative
/// terms in both tails: `log1p` of the upper tail for z > 0, the tail itself through
/// `erfc` down to z = −30, and beyond it the asymptotic series
/// Φ(z) ≈ φ(z)/|z| · (1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸), whose next term is below 2e-12.
pub(crate) fn ln_normal_cdf(z: f64) -> f64 {
    const SQRT_2: f64 = core::f64::consts::SQRT_2;
    // ½ ln(2π)
    const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    if z > 0.0 {
        libm::log1p(-0.5 * libm::erfc(z / SQRT_2))
    } else if z > -30.0 {
        libm::log(0.5 * libm::erfc(-z / SQRT_2))
    } else {
        let r = 1.0 / (z * z);
        let series = 1.0 - r * (1.0 - r * (3.0 - r * (15.0 - r * 105.0)));
        -0.5 * z * z - libm::log(-z) - LN_SQRT_2PI + libm::log(series)
    }
}

/// The continued fraction of I_x(a, b) (modified Lentz's method, as in Numerical
/// Recipes' `betacf`), for x < (a + 1)/(a + b + 2).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let fix = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / fix(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=CF_TERMS_MAX {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / fix(1.0 + even * d);
        c = fix(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / fix(1.0 + odd * d);
        c = fix(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
#[allow(clippy::approx_constant)] // SciPy's reference values, as printed
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs().max(1e-6);
        assert!(
            err <= rel,
            "got {got:e}, want {want:e} (relative error {err:e})"
        );
    }

    /// Reference values from SciPy 1.17.1: `scipy.special.betaln(a, b)` and
    /// `log(scipy.special.betaincc(a, b, x))`, an independent implementation (Boost's
    /// `ibeta`), printed with 17 significant digits.
    /// ln B is a difference of ln Γ values, so its absolute error is a few ulps of the
    /// largest of them (1.5e-8 for B(3.3, 10^7), whose ln Γ(a + b) is 1.5e8).
    #[test]
    fn ln_beta_matches_scipy_within_the_cancellation_bound() {
        for (a, b, want) in LN_BETA {
            let scale = ln_gamma(a).abs() + ln_gamma(b).abs() + ln_gamma(a + b).abs();
            let err = (ln_beta(a, b) - want).abs();
            assert!(
                err <= 4.0 * f64::EPSILON * scale.max(1.0),
                "B({a}, {b}): error {err:e}"
            );
        }
    }

    #[test]
    fn upper_tail_matches_scipy_on_both_sides_and_far_out() {
        for (a, b, x, want) in LN_UPPER {
            close(ln_beta_upper(a, b, x), want, 1e-11);
        }
    }

    #[test]
    fn upper_tail_is_a_probability_and_falls_with_x() {
        let mut last = 0.0;
        for i in 1..100 {
            let x = f64::from(i) / 100.0;
            let v = ln_beta_upper(7.5, 3.25, x);
            assert!(v <= 0.0 && v < last + 1e-15, "x = {x}: {v} after {last}");
            last = v;
        }
    }

    /// Reference values from SciPy 1.17.1, `scipy.special.log_ndtr`.
    #[test]
    fn ln_normal_cdf_matches_scipy_in_both_tails() {
        for (z, want) in [
            (-40.0, -804.6084420137539),
            (-30.0, -454.32124395634327),
            (-29.0, -424.78741990973026),
            (-20.0, -203.9171553710973),
            (-10.0, -53.23128515051248),
            (-5.0, -15.064998393988727),
            (-1.0, -1.8410216450092634),
            (0.0, -0.6931471805599453),
            (1.0, -0.1727537790234499),
            (5.0, -2.8665161296376294e-07),
            (10.0, -7.61985302416047e-24),
        ] {
            close(ln_normal_cdf(z), want, 1e-12);
        }
    }

    include!("special_reference.rs");
}
