//! Profiling aid: the cost of one Galois-ring product GR(2^k, 48) in each ring, against a
//! plain schoolbook product without reduction. Run: `cargo run --release --example gr_mul_probe`.

use mpcstats::engine::verify::galois::Gr;
use mpcstats::engine::{Ring, Z128, Z64};
use rand::SeedableRng;
fn school<R: Ring>(a: &Gr<R>, b: &Gr<R>) -> R {
    let mut acc = [R::zero(); 95];
    for i in 0..48 {
        for j in 0..48 {
            acc[i + j] += a.0[i] * b.0[j];
        }
    }
    acc[3]
}
fn run<R: Ring>() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let v: Vec<Gr<R>> = (0..1000).map(|_| Gr::random(&mut rng)).collect();
    let t = std::time::Instant::now();
    let mut acc = Gr::<R>::zero();
    for _ in 0..20 {
        for w in v.windows(2) {
            acc = acc + w[0] * w[1];
        }
    }
    let k = t.elapsed().as_secs_f64() / 20e3 * 1e9;
    let t = std::time::Instant::now();
    let mut s = R::zero();
    for _ in 0..20 {
        for w in v.windows(2) {
            s += school(&w[0], &w[1]);
        }
    }
    let sc = t.elapsed().as_secs_f64() / 20e3 * 1e9;
    println!(
        "{} bits: Gr mul {k:.0} ns, schoolbook (no reduction) {sc:.0} ns  {:?}",
        R::BITS,
        (acc.0[0] == R::zero(), s == R::zero())
    );
}
fn main() {
    run::<Z64>();
    run::<Z128>();
    run::<mpcstats::engine::wide::Z256>();
}
