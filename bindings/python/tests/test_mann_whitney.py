"""mann_whitney against independent implementations.

- U and the p-value: scipy.stats.mannwhitneyu(judged, baseline), two-sided, normal
  approximation with the tie and continuity corrections.
- The confidence interval: a direct transcription of Kayenta's procedure
  (kayenta-mannwhitney's MannWhitney.calculateConfidenceInterval, itself R's
  asymptotic wilcox.test interval): rank (judged - mu) among the baseline with average
  ranks, the continuity-corrected, tie-corrected z of the rank sum minus the quantile,
  Kayenta's end-point checks, then a bracketing root finder (scipy's brentq in place of
  Commons Math's Brent solver; on this step function both converge to the jump).
- The estimate: the Hodges-Lehmann median of the pairwise differences (numpy), which
  must be a root of Kayenta's equation for the quantile 0 (where it changes sign).
- The classification: Kayenta's MannWhitneyClassifier rules on those numbers.
- CLES: the share of (judged, baseline) pairs where judged is higher, ties half (numpy
  over all pairs), against Kayenta's StatisticSuite values where they are exact.
- Outlier removal: Kayenta's IQRDetector(factor, reduceSensitivity = true) with numpy's
  "weibull" percentiles (position p(n + 1), Commons Math's StatUtils.percentile), then
  the statistics above on what is kept.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

import rollguard


def kayenta_z(x: np.ndarray, y: np.ndarray, mu: float, q: float) -> float:
    """Kayenta's wilcoxonDiff(mu, q): x is the experiment (judged), y the control."""
    n, m = len(x), len(y)
    ranks = stats.rankdata(np.concatenate([x - mu, y]), method="average")
    _, counts = np.unique(ranks, return_counts=True)
    dz = ranks[:n].sum() - n * (n + 1) / 2 - n * m / 2
    correction = np.sign(dz) * 0.5
    sigma = np.sqrt((n * m / 12) * ((n + m + 1) - (counts**3 - counts).sum() / ((n + m) * (n + m - 1))))
    return float((dz - correction) / sigma - q)


def kayenta_root(x: np.ndarray, y: np.ndarray, q: float) -> float:
    lo, hi = float(x.min() - y.max()), float(x.max() - y.min())
    if kayenta_z(x, y, lo, q) <= 0:
        return lo
    if kayenta_z(x, y, hi, q) >= 0:
        return hi
    return float(optimize.brentq(lambda mu: kayenta_z(x, y, mu, q), lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))


def kayenta_interval(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float]:
    zq = stats.norm.ppf((1 - confidence) / 2)
    return kayenta_root(x, y, -zq), kayenta_root(x, y, zq)


def run_interval(judged: np.ndarray, baseline: np.ndarray, confidence: float, worse: str, **rule: object) -> dict:
    """One 10 s interval of a dry-run mann_whitney gate fed these samples; its report."""
    config = {
        "format_version": 1,
        "versions": [{"id": "v1", "digest": "d1", "validated": True}, {"id": "v2", "digest": "d2"}],
        "stable": "v1",
        "metrics": [{"name": "m", "kind": "value"}],
        "gates": [{"name": "k", "metric": "m", "stat": "mean", "dry_run": True,
                   "rule": {"kind": "mann_whitney", "confidence": confidence, "worse": worse, **rule}}],
        "strategy": {"kind": "canary", "steps": [{"kind": "set_weight", "weight": 50, "duration_ms": 600_000}]},
        "analysis": {"interval_ms": 10_000},
    }
    policy = rollguard.Policy(config, now=0)
    step = policy.handle({"kind": "start_rollout", "at": 0, "version": "v2"})
    for d in step.actions:
        policy.handle({"kind": "ack", "at": 0, "action_id": d.action_id})
    samples = [(1 + i * 40, "v1", v) for i, v in enumerate(baseline)]
    samples += [(2 + i * 40, "v2", v) for i, v in enumerate(judged)]
    for at, arm, v in sorted(samples, key=lambda s: s[0]):
        policy.observe_value(at, arm, "m", float(v))
    step = policy.tick(10_000)
    reports = [r for ev in step.events if ev.kind == "analysis" for r in ev.fields["reports"]]
    assert len(reports) == 1
    return reports[0]


def datasets() -> list[tuple[str, np.ndarray, np.ndarray, float, str]]:
    rng = np.random.default_rng(20261206)
    out = []
    out.append(("normal, no shift", rng.normal(100, 10, 40), rng.normal(100, 10, 40), 0.98, "either"))
    out.append(("normal, +0.8 sd", rng.normal(108, 10, 60), rng.normal(100, 10, 45), 0.98, "higher"))
    out.append(("lognormal, +10 %", 100 * rng.lognormal(0.1, 0.5, 100), 100 * rng.lognormal(0.0, 0.5, 150), 0.98, "either"))
    out.append(("ties (integers), +1", np.round(rng.normal(11, 2, 50)), np.round(rng.normal(10, 2, 50)), 0.95, "either"))
    out.append(("heavy ties", rng.integers(0, 3, 70).astype(float), rng.integers(0, 4, 30).astype(float), 0.98, "either"))
    out.append(("tiny", rng.normal(5, 1, 3), rng.normal(4, 1, 5), 0.9, "either"))
    out.append(("quality drop", rng.normal(0.78, 0.02, 80), rng.normal(0.80, 0.02, 80), 0.98, "lower"))
    out.append(("one constant arm", np.full(20, 3.0), rng.normal(2.0, 0.5, 25), 0.98, "either"))
    return out


@pytest.mark.parametrize(("name", "judged", "baseline", "confidence", "worse"), datasets(), ids=[d[0] for d in datasets()])
def test_statistics_match_scipy_and_kayentas_procedure(
    name: str, judged: np.ndarray, baseline: np.ndarray, confidence: float, worse: str
) -> None:
    rep = run_interval(judged, baseline, confidence, worse)
    assert rep["used"] == len(judged) and rep["baseline_used"] == len(baseline)

    want = stats.mannwhitneyu(judged, baseline, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert rep["u_statistic"] == float(want.statistic)
    assert rep["p_value"] == pytest.approx(float(want.pvalue), rel=1e-12, abs=1e-300)

    lower, upper = kayenta_interval(judged, baseline, confidence)
    assert rep["effect_lower"] == pytest.approx(lower, rel=1e-9, abs=1e-9)
    assert rep["effect_upper"] == pytest.approx(upper, rel=1e-9, abs=1e-9)

    diffs = np.subtract.outer(judged, baseline).ravel()
    est = float(np.median(diffs))
    assert rep["effect"] == pytest.approx(est, rel=1e-12, abs=1e-12)
    # The estimate is where Kayenta's equation for the quantile 0 changes sign.
    gaps = np.diff(np.unique(diffs))
    delta = 0.25 * float(gaps.min()) if len(gaps) else 1e-6
    assert kayenta_z(judged, baseline, est - delta, 0.0) >= 0 >= kayenta_z(judged, baseline, est + delta, 0.0)

    ratio = judged.mean() / baseline.mean() if baseline.mean() != 0 else 1.0
    assert rep["mean_ratio"] == pytest.approx(ratio, rel=1e-12)

    # Kayenta's classification (tolerance 0.25, allowed ratios 1) and the gate's verdict.
    bound = 0.25 * abs(est)
    if worse in ("higher", "either") and lower > bound and ratio >= 1.0:
        cls = "high"
    elif worse in ("lower", "either") and upper < -bound and ratio <= 1.0:
        cls = "low"
    else:
        cls = "pass"
    assert rep["classification"] == cls, name
    assert rep["verdict"] == ("fail" if cls != "pass" else "pass")


def test_kayentas_own_example() -> None:
    # kayenta-mannwhitney's MannWhitneySuite: control 1..4, experiment 10..40, 95 %.
    rep = run_interval(np.array([10.0, 20.0, 30.0, 40.0]), np.array([1.0, 2.0, 3.0, 4.0]), 0.95, "either")
    assert (rep["effect_lower"], rep["effect_upper"], rep["effect"]) == (6.0, 39.0, 22.5)
    assert kayenta_interval(np.array([10.0, 20.0, 30.0, 40.0]), np.array([1.0, 2.0, 3.0, 4.0]), 0.95) == (6.0, 39.0)


def test_an_empty_arm_is_no_data() -> None:
    rep = run_interval(np.array([1.0, 2.0]), np.array([]), 0.98, "either")
    assert rep["classification"] == "no_data" and rep["verdict"] == "inconclusive"
    assert "u_statistic" not in rep and "p_value" not in rep


def pairwise_cles(x: np.ndarray, y: np.ndarray) -> float:
    d = np.subtract.outer(x, y)
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


def kayenta_kept(v: np.ndarray, factor: float) -> np.ndarray:
    """IQRDetector(factor, reduceSensitivity = true): the samples inside the fences."""
    if len(v) == 0:
        return v
    p01, q1, q3, p99 = np.percentile(v, [1, 25, 75, 99], method="weibull")
    low, high = min(p01, q1 - factor * (q3 - q1)), max(p99, q3 + factor * (q3 - q1))
    return v[(v >= low) & (v <= high)]


@pytest.mark.parametrize(("name", "judged", "baseline", "confidence", "worse"), datasets(), ids=[d[0] for d in datasets()])
def test_cles_is_the_pairwise_share(name: str, judged: np.ndarray, baseline: np.ndarray, confidence: float, worse: str) -> None:
    rep = run_interval(judged, baseline, confidence, worse, effect_size="cles")
    cles = pairwise_cles(judged, baseline)
    assert rep["cles"] == pytest.approx(cles, rel=1e-15, abs=1e-15)
    est = float(np.median(np.subtract.outer(judged, baseline)))
    lower, upper = kayenta_interval(judged, baseline, confidence)
    bound = 0.25 * abs(est)
    if worse in ("higher", "either") and lower > bound and cles >= 0.5:
        cls = "high"
    elif worse in ("lower", "either") and upper < -bound and cles <= 0.5:
        cls = "low"
    else:
        cls = "pass"
    assert rep["classification"] == cls, name


def test_kayentas_cles_examples() -> None:
    # Kayenta's StatisticSuite: identical samples 0.5, no overlap 0.
    same = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert run_interval(same, same, 0.98, "either", effect_size="cles")["cles"] == 0.5
    rep = run_interval(np.array([2.27, 2.61, 3.26, 1.4]), np.array([25.3, 25.1, 24.6]), 0.98, "either", effect_size="cles")
    assert rep["cles"] == 0.0


def outlier_datasets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(906)
    out = []
    j = rng.normal(100, 10, 200)
    j[[3, 50]] = [900.0, -400.0]
    b = rng.normal(100, 10, 180)
    b[7] = 2_000.0
    out.append(("spikes in both arms", j, b))
    out.append(("lognormal tails", 100 * rng.lognormal(0, 1.2, 240), 100 * rng.lognormal(0, 1.2, 210)))
    out.append(("heavy ties and one spike", np.append(rng.integers(0, 3, 60).astype(float), 50.0), rng.integers(0, 3, 40).astype(float)))
    out.append(("small", np.array([1.0, 2.0, 3.0, 100.0]), np.array([1.5, 2.5, 2.0])))
    return out


@pytest.mark.parametrize(("name", "judged", "baseline"), outlier_datasets(), ids=[d[0] for d in outlier_datasets()])
@pytest.mark.parametrize("factor", [1.5, 3.0])
def test_outlier_removal_matches_kayentas_detector(name: str, judged: np.ndarray, baseline: np.ndarray, factor: float) -> None:
    rep = run_interval(judged, baseline, 0.98, "either", outliers={"strategy": "remove", "factor": factor})
    kj, kb = kayenta_kept(judged, factor), kayenta_kept(baseline, factor)
    assert (rep["used"], rep["baseline_used"]) == (len(kj), len(kb)), name
    assert rep.get("outliers_removed", 0) == len(judged) - len(kj)
    assert rep.get("baseline_outliers_removed", 0) == len(baseline) - len(kb)
    want = stats.mannwhitneyu(kj, kb, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert rep["u_statistic"] == float(want.statistic)
    lower, upper = kayenta_interval(kj, kb, 0.98)
    assert rep["effect_lower"] == pytest.approx(lower, rel=1e-9, abs=1e-9)
    assert rep["effect_upper"] == pytest.approx(upper, rel=1e-9, abs=1e-9)
    assert rep["mean_ratio"] == pytest.approx(kj.mean() / kb.mean(), rel=1e-12)


def test_spikes_are_removed_at_all() -> None:
    # Not vacuous: the first data set loses its three spikes at factor 3.
    name, judged, baseline = outlier_datasets()[0]
    rep = run_interval(judged, baseline, 0.98, "either", outliers={"strategy": "remove"})
    assert (rep["outliers_removed"], rep["baseline_outliers_removed"]) == (2, 1), name
