//! Reference policies for the benches.
