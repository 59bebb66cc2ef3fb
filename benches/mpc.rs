//! Engine benchmark over real QUIC on loopback (three parties in one process). Prints time,
//! rounds and bytes per party for vectorised products, comparisons, shuffles and AND gates.
//!
//! Run: `cargo bench --bench mpc` (optionally `-- 100000` for another vector length, and
//! `--reps N` for the repetitions each figure is the median of, 3 by default; `products`,
//! `comparisons`, `shuffle` or `and` to run only those sections; `semi-honest` or
//! `malicious` to run only that mode).

mod common;

use common::{meshes, ratio, report_reps, run3, run3_reps};
use mpcstats::engine::{BitShares, Share, Z128, Z64};

fn main() {
    let n: usize = common::positional()
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    if n == 0 {
        eprintln!("mpc bench: vectors need at least one element (got 0)");
        std::process::exit(2);
    }
    // Sections by name (`products`, `comparisons`, `shuffle`, `and`); all when none is named. A mode
    // named (`semi-honest`, `malicious`) runs only that mode.
    let all: Vec<String> = common::positional()
        .into_iter()
        .filter(|a| a.parse::<usize>().is_err())
        .collect();
    let (in_modes, named) = common::modes_and_rest(all);
    let run = |name: &str| named.is_empty() || named.iter().any(|a| a == name);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let m = meshes().await;
        println!("three parties over QUIC on loopback, vectors of {n} elements");
        let mul64 = |n: usize| {
            move |_, mut s: mpcstats::engine::Session<_>| async move {
                let x: Vec<Share<Z64>> = s.correlated().random_shares(n);
                let y: Vec<Share<Z64>> = s.correlated().random_shares(n);
                let z = s.mul(&x, &y).await.unwrap();
                s.verify().await.unwrap();
                (s, z.len())
            }
        };
        run3(&m, [0; 16], mul64(1000)).await; // warm-up
        let mut semi = None;
        let modes = |name: &str| {
            if run(name) {
                in_modes.clone()
            } else {
                vec![]
            }
        };
        for security in modes("products") {
            let r = run3_reps(&m, [1 + security as u8; 16], security, mul64(n)).await;
            let (t, _, b) = report_reps(&format!("products in Z_2^64, {}", security.name()), &r);
            println!(
                "  {:.2} M products/s, {:.1} bytes per product per party",
                n as f64 / t.as_secs_f64() / 1e6,
                b as f64 / n as f64
            );
            ratio(&mut semi, t, b);
        }
        for security in modes("products").into_iter().take(1) {
            let r = run3_reps(&m, [9; 16], security, move |_, mut s| async move {
                let x: Vec<Share<Z128>> = s.correlated().random_shares(n);
                let y: Vec<Share<Z128>> = s.correlated().random_shares(n);
                let z = s.mul(&x, &y).await.unwrap();
                (s, z.len())
            })
            .await;
            let (t, _, b) = report_reps("products in Z_2^128", &r);
            println!(
                "  {:.2} M products/s, {:.1} bytes per product per party",
                n as f64 / t.as_secs_f64() / 1e6,
                b as f64 / n as f64
            );
        }
        for bits in [64u32, 84] {
            let mut semi = None;
            for security in modes("comparisons") {
                let seed = [3 + bits as u8 + security as u8; 16];
                let r = run3_reps(&m, seed, security, move |_, mut s| async move {
                    let x: Vec<Share<Z128>> = s.correlated().random_shares(n);
                    let y: Vec<Share<Z128>> = s.correlated().random_shares(n);
                    let z = s.lt(&x, &y, bits).await.unwrap();
                    s.verify().await.unwrap();
                    (s, z.len)
                })
                .await;
                let label = format!("{bits}-bit comparisons, {}", security.name());
                let (t, _, b) = report_reps(&label, &r);
                println!(
                    "  {:.2} M comparisons/s, {:.1} bytes per comparison per party",
                    n as f64 / t.as_secs_f64() / 1e6,
                    b as f64 / n as f64
                );
                ratio(&mut semi, t, b);
            }
        }
        // The shuffle of one key column, as selection shuffles it: Z_2^128 keys compared on
        // 65 bits (tags in Z_2^128 in malicious mode), then the same column at full width
        // (tags in Z_2^192).
        for bits in [65u32, 128] {
            let mut semi = None;
            for security in modes("shuffle") {
                let seed = [11 + bits as u8 + security as u8; 16];
                let r = run3_reps(&m, seed, security, move |_, mut s| async move {
                    let x: Vec<Share<Z128>> = s.correlated().random_shares(n);
                    let z = s.shuffle_low(&[x], bits).await.unwrap();
                    s.verify().await.unwrap();
                    (s, z[0].len())
                })
                .await;
                let label = format!(
                    "shuffle of Z_2^128 keys on {bits} bits, {}",
                    security.name()
                );
                let (t, _, b) = report_reps(&label, &r);
                println!(
                    "  {:.2} M rows/s, {:.1} bytes per row per party",
                    n as f64 / t.as_secs_f64() / 1e6,
                    b as f64 / n as f64
                );
                ratio(&mut semi, t, b);
            }
        }
        // AND gates in both modes: the malicious run includes the proof of every gate.
        let gates = 16 * n;
        let mut semi = None;
        for security in modes("and") {
            let r = run3_reps(
                &m,
                [7 + security as u8; 16],
                security,
                move |i, mut s| async move {
                    let x = BitShares::from_public(i, &vec![u64::MAX; gates.div_ceil(64)], gates)
                        .unwrap();
                    let y = x.not(i).not(i);
                    let mut z = s.and(&x, &y).await.unwrap();
                    for _ in 0..3 {
                        z = s.and(&z, &x).await.unwrap();
                    }
                    s.verify().await.unwrap();
                    (s, z.len)
                },
            )
            .await;
            let (t, _, b) = report_reps(&format!("4 x {gates} AND gates, {}", security.name()), &r);
            println!(
                "  {:.0} M AND gates/s, {:.3} bytes per gate per party",
                4.0 * gates as f64 / t.as_secs_f64() / 1e6,
                b as f64 / (4.0 * gates as f64)
            );
            ratio(&mut semi, t, b);
        }
    });
}
