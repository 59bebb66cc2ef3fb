//! Profiling aid: the time of the malicious-mode proofs alone, over the in-process
//! transport (three parties on one multi-threaded runtime): `words` AND words from random
//! ANDs (the fastest of `reps` proofs), then `n` single-pair ring products in Z_2^64. Run:
//! `cargo run --release --example proof_probe -- [words] [products] [reps]`.

use std::time::Instant;

use mpcstats::engine::local::{local_transports, run3_secure};
use mpcstats::engine::{BitShares, Security, Share, Z64};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let words = args.first().copied().unwrap_or(1 << 17);
    let n = args.get(1).copied().unwrap_or(1 << 18);
    let reps = args.get(2).copied().unwrap_or(1).max(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let out = run3_secure(
            1,
            Security::Malicious,
            local_transports(),
            move |mut s| async move {
                let bits = |s: &mut mpcstats::engine::Session<_>| {
                    let w: Vec<Share<Z64>> = s.correlated().random_shares(words);
                    BitShares {
                        a: w.iter().map(|x| x.a.0).collect(),
                        b: w.iter().map(|x| x.b.0).collect(),
                        len: 64 * words,
                    }
                };
                let mut t_and = std::time::Duration::MAX;
                for _ in 0..reps {
                    let (x, y) = (bits(&mut s), bits(&mut s));
                    let _z = s.and(&x, &y).await?;
                    let t = Instant::now();
                    s.verify().await?;
                    t_and = t_and.min(t.elapsed());
                }
                let a: Vec<Share<Z64>> = s.correlated().random_shares(n);
                let b: Vec<Share<Z64>> = s.correlated().random_shares(n);
                let _p = s.mul(&a, &b).await?;
                let t = Instant::now();
                s.verify().await?;
                Ok((t_and, t.elapsed()))
            },
        )
        .await;
        let [a, b, c] = out.map(|r| r.unwrap());
        let and = [a.0, b.0, c.0].into_iter().max().unwrap();
        let ring = [a.1, b.1, c.1].into_iter().max().unwrap();
        println!(
            "AND proof: {words} words in {:.1} ms ({:.0} ns/word)",
            and.as_secs_f64() * 1e3,
            and.as_secs_f64() * 1e9 / words as f64
        );
        println!(
            "ring proof: {n} products in Z_2^64 in {:.1} ms ({:.0} ns/product)",
            ring.as_secs_f64() * 1e3,
            ring.as_secs_f64() * 1e9 / n as f64
        );
    });
}
