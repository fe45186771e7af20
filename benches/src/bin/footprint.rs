//! Prints the reference policy's memory footprint after 10^3, 10^5 and 10^6 samples at
//! several sample rates, to show that it is fixed by the config and does not grow with
//! the number or rate of samples. See [`rollguard_benches::footprint`] for how the
//! in-memory size is estimated.
//!
//! `cargo run --release -p rollguard-benches --bin footprint`

use rollguard_benches::{feed, footprint, reference_policy, stream};

fn main() {
    let items = stream(6_000, 7);
    println!(
        "{:>9} {:>9} {:>12} | {:>5} {:>7} {:>8} {:>13} {:>11} {:>14}",
        "samples",
        "rate/s",
        "policy time",
        "arms",
        "buckets",
        "bins",
        "windows (B)",
        "other (B)",
        "snapshot (B)"
    );
    for n in [1_000u64, 100_000, 1_000_000] {
        for rate in [10u64, 1_000, 100_000] {
            let mut p = reference_policy(0);
            feed(&mut p, &items, n, rate);
            let f = footprint(&p);
            println!(
                "{n:>9} {rate:>9} {:>11}s | {:>5} {:>7} {:>8} {:>13} {:>11} {:>14}",
                p.now() / 1000,
                f.arms,
                f.buckets,
                f.histogram_bins,
                f.window_bytes,
                f.other_bytes,
                f.snapshot_bytes
            );
        }
    }
}
