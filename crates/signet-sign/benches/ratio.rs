//! Interleaved throughput ratios: Standard Webhooks sign and verify against
//! the raw HMAC-SHA256 primitive (the `hmac` crate with the keyed state
//! precomputed), at 64 B … 1 MiB.
//!
//! Criterion measures one function after another; on a shared machine the
//! load changes between them and the ratio drifts by ±15 %. Here the three
//! run in alternating rounds, so they see the same conditions, and the
//! ratio is reported from the median round and from the fastest round of
//! each (the least disturbed).
//!
//! Run: `cargo bench -p signet-sign --bench ratio`

use std::hint::black_box;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use signet_sign::standard::{sign, verify};
use signet_sign::{HmacSecret, Key, KeyId, KeyMaterial, KeyRing};

const MSG_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TS: i64 = 1_767_225_600;
const TS_TEXT: &str = "1767225600";

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // run one tiny round of each so the target is exercised quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secret = [0x5au8; 32];
    let ring = KeyRing::single(Key::new(
        KeyId::new("bench").expect("valid id"),
        KeyMaterial::Hmac(HmacSecret::new(secret.to_vec()).expect("non-empty")),
    ));
    let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("any key length");
    println!("| body | primitive | sign | verify | sign / primitive (median, best round) | verify / primitive (median, best round) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in [64usize, 256, 1024, 16 * 1024, 1024 * 1024] {
        let body = vec![b'x'; size];
        let header = sign(&ring, MSG_ID, TS, &body).expect("signs");
        // About 0.4 s per size whatever the size.
        let (per_round, rounds) = if quick {
            (1, 1)
        } else {
            ((200_000 / size.max(64)).max(2) as u32, 60)
        };
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..rounds {
            for (which, samples) in times.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..per_round {
                    match which {
                        0 => {
                            let mut mac = keyed.clone();
                            mac.update(black_box(&body));
                            black_box(mac.finalize().into_bytes());
                        }
                        1 => {
                            black_box(sign(&ring, MSG_ID, TS, black_box(&body)).expect("signs"));
                        }
                        _ => {
                            black_box(
                                verify(&ring, MSG_ID, TS_TEXT, &header, black_box(&body), TS, 300)
                                    .expect("verifies"),
                            );
                        }
                    }
                }
                samples.push(start.elapsed());
            }
        }
        let per_op = |d: Duration, n: u32| d.as_secs_f64() * 1e9 / f64::from(n);
        for samples in &mut times {
            samples.sort_unstable();
        }
        let median: Vec<f64> = times
            .iter()
            .map(|s| per_op(s[s.len() / 2], per_round))
            .collect();
        let fast: Vec<f64> = times.iter().map(|s| per_op(s[0], per_round)).collect();
        let pct = |v: &[f64], i: usize| 100.0 * v[0] / v[i];
        println!(
            "| {} | {} | {} | {} | {:.0} %, {:.0} % | {:.0} %, {:.0} % |",
            label(size),
            time(fast[0]),
            time(fast[1]),
            time(fast[2]),
            pct(&median, 1),
            pct(&fast, 1),
            pct(&median, 2),
            pct(&fast, 2),
        );
    }
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1024 * 1024 => format!("{} MiB", s / (1024 * 1024)),
        s if s >= 1024 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
