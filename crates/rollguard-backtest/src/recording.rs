//! A recording: samples in time order, and its moving-block bootstrap.

use rollguard::{EventKind, Input, Sample, Scenario, Timestamp};

use crate::error::BacktestError;
use crate::rng::Rng;

/// Recorded samples, sorted by time (stably: samples at the same time keep their
/// recorded order).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    samples: Vec<Sample>,
}

impl Recording {
    /// A recording of `samples`, in any order.
    ///
    /// # Errors
    /// `empty_recording` when there are none.
    pub fn new(mut samples: Vec<Sample>) -> Result<Self, BacktestError> {
        if samples.is_empty() {
            return Err(BacktestError::new(
                "empty_recording",
                "samples",
                "the recording has no samples",
            ));
        }
        samples.sort_by_key(|s| s.at);
        Ok(Self { samples })
    }

    /// The traffic a scenario's stable version served: the samples of each version
    /// while it was the stable one, as the scenario's `aliases_changed` events say. A
    /// recording of production, made of what the scenario replays.
    ///
    /// # Errors
    /// The scenario's config error; `empty_recording` when no sample came from a
    /// stable version.
    pub fn from_scenario(scenario: &Scenario) -> Result<Self, BacktestError> {
        let mut stable = scenario.config.stable.clone();
        let mut samples = Vec::new();
        rollguard::replay_with(
            scenario.config.clone(),
            scenario.start,
            scenario.inputs.iter().cloned(),
            |entry| {
                let batch = match &entry.input {
                    Input::Observe(s) => std::slice::from_ref(s),
                    Input::ObserveBatch { samples } => samples.as_slice(),
                    _ => &[],
                };
                samples.extend(batch.iter().filter(|s| s.arm == stable).cloned());
                for e in entry.step.iter().flat_map(|s| &s.events) {
                    if let EventKind::AliasesChanged(a) = &e.kind {
                        stable = a.stable.clone();
                    }
                }
            },
        )?;
        Self::new(samples)
    }

    /// The samples, in time order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The first sample's time.
    pub fn start(&self) -> Timestamp {
        self.samples.first().map_or(0, |s| s.at)
    }

    /// The last sample's time.
    pub fn end(&self) -> Timestamp {
        self.samples.last().map_or(0, |s| s.at)
    }

    /// The share of events in `metric`'s count samples, over all arms; `None` without
    /// any total.
    pub(crate) fn event_rate(&self, metric: &str) -> Option<f64> {
        let (events, total) = self
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter_map(|s| Some((s.events?, s.total?)))
            .fold((0i128, 0i128), |(e, t), (se, st)| {
                (e + i128::from(se), t + i128::from(st))
            });
        (total > 0).then(|| events as f64 / total as f64)
    }

    /// A moving-block bootstrap of the recording: blocks of `block_ms` copied from
    /// uniformly drawn starts and laid end to end from [`start`](Self::start) until the
    /// copy is as long as the original. Times within a block keep their offsets.
    pub(crate) fn resampled(&self, block_ms: u64, rng: &mut Rng) -> Vec<Sample> {
        let (t0, t1) = (self.start(), self.end());
        let length = t1 - t0 + 1;
        let latest_start = t1.saturating_sub(block_ms - 1).max(t0);
        let mut out = Vec::with_capacity(self.samples.len());
        let mut at = t0;
        while at < t0 + length {
            let len = block_ms.min(t0 + length - at);
            let from = rng.between(t0, latest_start);
            let lo = self.samples.partition_point(|s| s.at < from);
            let hi = self.samples.partition_point(|s| s.at < from + len);
            out.extend(self.samples[lo..hi].iter().map(|s| Sample {
                at: s.at - from + at,
                ..s.clone()
            }));
            at += len;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(n: u64) -> Recording {
        let samples = (0..n)
            .map(|i| Sample::value(1_000 + i * 100, "v1", "latency_ms", i as f64))
            .collect();
        Recording::new(samples).unwrap()
    }

    #[test]
    fn an_empty_recording_is_refused() {
        assert_eq!(Recording::new(vec![]).unwrap_err().code, "empty_recording");
    }

    #[test]
    fn samples_are_sorted_stably_by_time() {
        let r = Recording::new(vec![
            Sample::value(5, "b", "m", 1.0),
            Sample::value(3, "a", "m", 2.0),
            Sample::value(5, "a", "m", 3.0),
        ])
        .unwrap();
        let order: Vec<(u64, f64)> = r
            .samples()
            .iter()
            .map(|s| (s.at, s.value.unwrap()))
            .collect();
        assert_eq!(order, [(3, 2.0), (5, 1.0), (5, 3.0)]);
    }

    #[test]
    fn a_resample_spans_the_recording_in_order_with_whole_blocks() {
        let r = recording(1_000); // 1 000 .. 100 900, one sample per 100 ms
        let mut rng = Rng::for_stream(1, 0, 0);
        let out = r.resampled(5_000, &mut rng);
        assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
        // A block may start between two samples: its first sample is then a little late.
        assert!((r.start()..r.start() + 100).contains(&out.first().unwrap().at));
        assert!(out.last().unwrap().at <= r.end());
        // Evenly spaced samples: every block of 5 s holds 50, the last one fewer.
        assert!((995..=1_000).contains(&out.len()), "{}", out.len());
        // Within a block the values are consecutive (copied in order); across blocks
        // they jump (drawn starts), so the copy is not the original.
        let jumps = out
            .windows(2)
            .filter(|w| w[1].value.unwrap() != w[0].value.unwrap() + 1.0)
            .count();
        assert!((1..=20).contains(&jumps), "{jumps}");
    }

    #[test]
    fn a_block_longer_than_the_recording_copies_it_whole() {
        let r = recording(10);
        let mut rng = Rng::for_stream(1, 0, 0);
        assert_eq!(r.resampled(1_000_000, &mut rng), r.samples());
    }
}
