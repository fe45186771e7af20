//! Small formatting helpers shared by the summary and the narrative.

use rollguard::{Action, Input, Stat};

/// `h:mm:ss` for a duration in milliseconds (a clock since the start of a replay).
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A short duration: `45s`, `10m`, `3m06s`, `2h`, `1h05m` (seconds dropped past an hour).
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// The snake_case `kind` of an action, as serialized.
pub(crate) fn action_kind(action: &Action) -> String {
    kind_of(serde_json::to_value(action).ok())
}

/// The snake_case `kind` of an input, as serialized.
pub(crate) fn input_kind(input: &Input) -> String {
    kind_of(serde_json::to_value(input).ok())
}

fn kind_of(value: Option<serde_json::Value>) -> String {
    value
        .as_ref()
        .and_then(|v| v.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("unknown")
        .to_string()
}

/// The snake_case name of a serializable unit enum (a reason, a stat, a phase).
pub(crate) fn snake<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// A statistic's value: rates as percentages, other values with precision that
/// suits their size.
pub(crate) fn stat_value(stat: Stat, x: f64) -> String {
    if stat == Stat::Rate {
        return format!("{:.2}%", x * 100.0);
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A short description of an input: its kind and the version or action it names.
pub(crate) fn input_summary(input: &Input) -> String {
    let kind = input_kind(input);
    match input {
        Input::StartRollout { version, .. } | Input::MarkValidated { version, .. } => {
            format!("{kind} {version}")
        }
        Input::Ack { action_id, .. } | Input::ActionFailed { action_id, .. } => {
            format!("{kind} of action {action_id}")
        }
        Input::Observe(s) => format!("{kind} {} {}", s.arm, s.metric),
        Input::ObserveBatch { samples } => format!("{kind} of {} samples", samples.len()),
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_durations() {
        assert_eq!(clock(5_826_000), "1:37:06");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(600_000), "10m");
        assert_eq!(duration(186_000), "3m06s");
        assert_eq!(duration(7_200_000), "2h");
        assert_eq!(duration(3_900_000), "1h05m");
        assert_eq!(duration(86_400_000), "24h");
    }

    #[test]
    fn stat_values_read_naturally() {
        assert_eq!(stat_value(Stat::Rate, 0.0071), "0.71%");
        assert_eq!(stat_value(Stat::P95, 212.94), "212.9");
        assert_eq!(stat_value(Stat::Mean, 0.9012), "0.901");
        assert_eq!(stat_value(Stat::Mean, 12.345), "12.35");
    }

    #[test]
    fn kinds_are_the_serialized_tags() {
        assert_eq!(input_kind(&Input::ClearBreaker { at: 1 }), "clear_breaker");
        assert_eq!(action_kind(&Action::Hold {}), "hold");
        assert_eq!(snake(&rollguard::Reason::CooldownActive), "cooldown_active");
        assert_eq!(
            input_summary(&Input::StartRollout {
                at: 0,
                version: "v2".into()
            }),
            "start_rollout v2"
        );
    }
}
