"""rollguard: deterministic, sans-IO rollback policies for model and agent rollouts.

A thin binding of the Rust core: every decision is the core's, byte for byte. This
module only re-exports the compiled extension.
"""

from rollguard._rollguard import (
    AGENTS_SNAPSHOT_FORMAT_VERSION,
    ASSIGN_VERSION,
    FORMAT_VERSION,
    SNAPSHOT_FORMAT_VERSION,
    TIME_MAX,
    Agents,
    ConfigError,
    Decision,
    Event,
    InputError,
    Policy,
    Recording,
    RollguardError,
    SnapshotError,
    Status,
    Step,
    TraceEntry,
    __version__,
    assign,
    assign_bucket,
    import_kayenta,
    replay,
    salt_for,
)

__all__ = [
    "AGENTS_SNAPSHOT_FORMAT_VERSION",
    "ASSIGN_VERSION",
    "FORMAT_VERSION",
    "SNAPSHOT_FORMAT_VERSION",
    "TIME_MAX",
    "Agents",
    "ConfigError",
    "Decision",
    "Event",
    "InputError",
    "Policy",
    "Recording",
    "RollguardError",
    "SnapshotError",
    "Status",
    "Step",
    "TraceEntry",
    "__version__",
    "assign",
    "assign_bucket",
    "import_kayenta",
    "replay",
    "salt_for",
]
