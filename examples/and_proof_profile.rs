//! Profiling aid: 16 M AND gates proven in-process (malicious mode). Not part of the product.
use mpcstats::engine::local::{local_transports, run3_secure};
use mpcstats::engine::{BitShares, Security};

#[tokio::main]
async fn main() {
    let gates = 1 << 24;
    let t = std::time::Instant::now();
    let out = run3_secure(
        1,
        Security::Malicious,
        local_transports(),
        move |mut s| async move {
            let i = s.id();
            let x = BitShares::from_public(i, &vec![u64::MAX; gates / 64], gates).unwrap();
            let z = s.and(&x, &x).await?;
            s.verify().await?;
            Ok(z.len)
        },
    )
    .await;
    println!("{:?} {:?}", out.map(|r| r.is_ok()), t.elapsed());
}
