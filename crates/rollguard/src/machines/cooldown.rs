//! The cooldown: after an automated rollback, no other for `safety.cooldown_ms`, so
//! that one noisy signal cannot bounce traffic back and forth.

use serde::{Deserialize, Serialize};

use crate::time::{Timestamp, later};

/// When the cooldown ends, while one runs. Serialized as that time (or absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Cooldown(Option<Timestamp>);

impl Cooldown {
    /// Starts (or restarts) a cooldown of `ms` at `now`; returns when it ends.
    pub(crate) fn start(&mut self, now: Timestamp, ms: u64) -> Timestamp {
        let until = later(now, ms);
        self.0 = Some(until);
        until
    }

    /// Whether automated rollbacks are held back at `now`.
    pub(crate) fn active(self, now: Timestamp) -> bool {
        self.0.is_some_and(|until| until > now)
    }

    /// When it ends, while one runs.
    pub(crate) fn until(self) -> Option<Timestamp> {
        self.0
    }

    /// The timer: when the end must be reported.
    pub(crate) fn deadline(self) -> Option<Timestamp> {
        self.0
    }

    /// Ends it (the timer fired, or an operator cleared it).
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    /// For `skip_serializing_if`: no cooldown is written as an absent field.
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_its_end_exclusive() {
        let mut c = Cooldown::default();
        assert!(!c.active(0));
        assert_eq!(c.start(1_000, 500), 1_500);
        assert!(c.active(1_000) && c.active(1_499));
        assert!(!c.active(1_500));
        assert_eq!(c.deadline(), Some(1_500));
        c.clear();
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn serializes_as_its_end_time() {
        let mut c = Cooldown::default();
        let _ = c.start(10, 5);
        assert_eq!(serde_json::to_string(&c).unwrap(), "15");
        assert_eq!(serde_json::from_str::<Cooldown>("15").unwrap(), c);
    }
}
