//! Signing benchmarks: Standard Webhooks sign and verify beside the raw
//! HMAC-SHA256 primitive (keyed state precomputed) at 64 B … 1 MiB, and
//! Ed25519 sign, strict verify and batch verify of 64.
//!
//! Run: `cargo bench -p signet-sign --bench sign -- --warm-up-time 1 --measurement-time 2`
//! Results and the ratio to the primitive are recorded in `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use signet_sign::batch::{verify_ed25519, BatchItem};
use signet_sign::standard::{sign, verify};
use signet_sign::{Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial, KeyRing};

const SIZES: [usize; 5] = [64, 256, 1024, 16 * 1024, 1024 * 1024];
const MSG_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TS: i64 = 1_767_225_600;
const TS_TEXT: &str = "1767225600";

fn hmac_ring(secret: &[u8]) -> KeyRing {
    KeyRing::single(Key::new(
        KeyId::new("bench").unwrap(),
        KeyMaterial::Hmac(HmacSecret::new(secret.to_vec()).unwrap()),
    ))
}

fn standard_hmac(c: &mut Criterion) {
    let secret = [0x5au8; 32];
    let ring = hmac_ring(&secret);
    let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
    for size in SIZES {
        let body = vec![b'x'; size];
        let header = sign(&ring, MSG_ID, TS, &body).unwrap();
        let mut group = c.benchmark_group(format!("standard_hmac/{size}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("primitive", |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(black_box(&body));
                black_box(mac.finalize().into_bytes())
            })
        });
        group.bench_function("sign", |b| {
            b.iter(|| black_box(sign(&ring, MSG_ID, TS, black_box(&body)).unwrap()))
        });
        group.bench_function("verify", |b| {
            b.iter(|| {
                black_box(
                    verify(
                        &ring,
                        MSG_ID,
                        TS_TEXT,
                        black_box(&header),
                        black_box(&body),
                        TS,
                        300,
                    )
                    .unwrap(),
                )
            })
        });
        group.finish();
    }
}

fn ed25519(c: &mut Criterion) {
    let secret = Ed25519SecretKey::from_seed(&[7u8; 32]).unwrap();
    let public = secret.public_key();
    let key = Key::new(
        KeyId::new("bench").unwrap(),
        KeyMaterial::Ed25519Private(secret),
    );
    let ring = KeyRing::single(key.duplicate());
    let verify_ring = ring.verify_only();
    let body = vec![b'x'; 1024];
    let header = sign(&ring, MSG_ID, TS, &body).unwrap();

    let mut group = c.benchmark_group("ed25519/1024");
    group.bench_function("sign", |b| {
        b.iter(|| black_box(sign(&ring, MSG_ID, TS, black_box(&body)).unwrap()))
    });
    group.bench_function("verify_strict", |b| {
        b.iter(|| {
            black_box(
                verify(
                    &verify_ring,
                    MSG_ID,
                    TS_TEXT,
                    &header,
                    black_box(&body),
                    TS,
                    300,
                )
                .unwrap(),
            )
        })
    });
    group.finish();

    let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 256]).collect();
    let signatures: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| key.sign(m).unwrap().as_bytes().to_vec())
        .collect();
    let items: Vec<BatchItem<'_>> = messages
        .iter()
        .zip(&signatures)
        .map(|(m, s)| BatchItem {
            key: &public,
            message: m,
            signature: s,
        })
        .collect();
    let mut group = c.benchmark_group("ed25519_batch_64x256B");
    group.throughput(Throughput::Elements(64));
    group.bench_function(BenchmarkId::new("batch", 64), |b| {
        b.iter(|| black_box(verify_ed25519(black_box(&items))))
    });
    group.bench_function(BenchmarkId::new("one_by_one_strict", 64), |b| {
        b.iter(|| {
            for (m, s) in messages.iter().zip(&signatures) {
                black_box(key.verify(black_box(m), s).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, standard_hmac, ed25519);
criterion_main!(benches);
