//! Python bindings (skeleton).
