//! Runs column calls with a tenant column through the scoped policy, for instruction
//! counts under callgrind: `ingest_calls METRIC CALLS ROWS [digest]`, with an analysis
//! every `INTERVAL` ms (environment; default 30 days: none during the calls), and
//! `PER_MS` rows per millisecond of policy time (default 10).

use rollguard::{LabelColumn, Labels};
use rollguard_benches::scoped_policy;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let metric = args.get(1).map_or("latency_ms", String::as_str);
    let calls: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rows: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let tenants: Vec<String> = (0..1000).map(|k| format!("tenant-{k:04}")).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let codes: Vec<i32> = (0..rows)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % 1000) as i32
        })
        .collect();
    let values: Vec<f64> = (0..rows)
        .map(|j| {
            let u = ((j * 7919) % 1000) as f64 / 1000.0;
            60.0 + 320.0 * u * u * u
        })
        .collect();
    let interval = std::env::var("INTERVAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_592_000_000);
    // Rows per millisecond of policy time: 10 (the criterion benches') starts new
    // buckets in every scope every call; more fill each bucket over many calls.
    let per_ms: u64 = std::env::var("PER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut p = scoped_policy(0, 1000, interval);
    let labels = Labels {
        tenant: Some(LabelColumn::new(&codes, &tenants)),
        ..Labels::default()
    };
    // A call's times from its first row's (the rows a whole number of milliseconds, so
    // each call adds one number to the same offsets: little of the count is this loop's).
    assert!(
        per_ms > 0 && rows.is_multiple_of(per_ms),
        "ROWS a multiple of PER_MS"
    );
    let offsets: Vec<u64> = (0..rows).map(|k| k / per_ms).collect();
    let mut start = 0u64;
    // One call to number the scopes, then the measured ones.
    for _ in 0..=calls {
        let at: Vec<u64> = offsets.iter().map(|k| start + k).collect();
        start += rows / per_ms;
        let step = p.observe_values_labelled("v2", metric, &at, &values, &labels);
        assert!(step.is_ok());
    }
    if args.get(4).map(String::as_str) != Some("digest") {
        return;
    }
    // A digest of the final state, to compare builds (FNV-1a of the snapshot's JSON).
    let json = serde_json::to_string(&p.snapshot()).expect("a snapshot");
    let h = json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    println!("{h:016x} {}", json.len());
}
