//! Replicated secret shares and their local (communication-free) operations, plus the
//! client-side functions that split a value into three pairs and reconstruct it from them.
//!
//! A value x = x_0 + x_1 + x_2; party i holds the pair (a, b) = (x_i, x_{i+1}), so share
//! component k is held by party k (as `a`) and by party k − 1 mod 3 (as `b`).
//! This module never talks to the network and holds no correlated randomness.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rand::RngCore;

use super::error::{EngineError, Result};
use super::ring::{z128_to_z64, Ring, Z128, Z64};
use super::transport::PartyId;

/// The pair of share components one party holds: `a` = x_i, `b` = x_{i+1}.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share<R> {
    pub a: R,
    pub b: R,
}

impl<R: Ring> Share<R> {
    /// The sharing of zero (all components zero).
    pub fn zero() -> Self {
        Share {
            a: R::zero(),
            b: R::zero(),
        }
    }

    /// Sharing of x + y.
    #[allow(clippy::should_implement_trait)] // also implemented as std::ops::Add below
    pub fn add(self, o: Self) -> Self {
        Share {
            a: self.a + o.a,
            b: self.b + o.b,
        }
    }

    /// Sharing of x − y.
    #[allow(clippy::should_implement_trait)] // also implemented as std::ops::Sub below
    pub fn sub(self, o: Self) -> Self {
        Share {
            a: self.a - o.a,
            b: self.b - o.b,
        }
    }

    /// Sharing of −x.
    #[allow(clippy::should_implement_trait)] // also implemented as std::ops::Neg below
    pub fn neg(self) -> Self {
        Share {
            a: -self.a,
            b: -self.b,
        }
    }

    /// Sharing of c · x for a public c.
    pub fn mul_public(self, c: R) -> Self {
        Share {
            a: self.a * c,
            b: self.b * c,
        }
    }

    /// Sharing of x + c for a public c, as computed by party `party`: c is added to share
    /// component 0, which party 0 holds as `a` and party 2 as `b`.
    pub fn add_public(self, party: PartyId, c: R) -> Self {
        match party {
            0 => Share {
                a: self.a + c,
                b: self.b,
            },
            2 => Share {
                a: self.a,
                b: self.b + c,
            },
            _ => self,
        }
    }
}

impl<R: Ring> Add for Share<R> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Share::add(self, o)
    }
}

impl<R: Ring> Sub for Share<R> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Share::sub(self, o)
    }
}

impl<R: Ring> Neg for Share<R> {
    type Output = Self;
    fn neg(self) -> Self {
        Share::neg(self)
    }
}

impl<R: Ring> AddAssign for Share<R> {
    fn add_assign(&mut self, o: Self) {
        *self = Share::add(*self, o);
    }
}

impl<R: Ring> SubAssign for Share<R> {
    fn sub_assign(&mut self, o: Self) {
        *self = Share::sub(*self, o);
    }
}

fn same_len(op: &str, x: usize, y: usize) -> Result<()> {
    if x == y {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "{op}: vectors of different lengths {x} and {y}"
        )))
    }
}

/// Element-wise sum; `Invalid` on different lengths.
pub fn add_vec<R: Ring>(x: &[Share<R>], y: &[Share<R>]) -> Result<Vec<Share<R>>> {
    same_len("add_vec", x.len(), y.len())?;
    Ok(x.iter().zip(y).map(|(p, q)| p.add(*q)).collect())
}

/// Element-wise difference; `Invalid` on different lengths.
pub fn sub_vec<R: Ring>(x: &[Share<R>], y: &[Share<R>]) -> Result<Vec<Share<R>>> {
    same_len("sub_vec", x.len(), y.len())?;
    Ok(x.iter().zip(y).map(|(p, q)| p.sub(*q)).collect())
}

/// Sharing of the sum of all elements (zero for an empty slice).
pub fn sum<R: Ring>(x: &[Share<R>]) -> Share<R> {
    x.iter().fold(Share::zero(), |acc, s| acc.add(*s))
}

/// Client side: splits `v` into a fresh random sharing; element i is party i's pair.
pub fn split<R: Ring, G: RngCore>(v: R, rng: &mut G) -> [Share<R>; 3] {
    let x0 = R::random(rng);
    let x1 = R::random(rng);
    let x2 = v - x0 - x1;
    [
        Share { a: x0, b: x1 },
        Share { a: x1, b: x2 },
        Share { a: x2, b: x0 },
    ]
}

/// Two parties sent different values of the same share component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inconsistent {
    /// The share component k that disagrees.
    pub component: usize,
    /// Its holders: party k (as `a`) and party k − 1 mod 3 (as `b`).
    pub holders: (PartyId, PartyId),
}

impl fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parties {} and {} sent different values of share component {}; one of them is faulty",
            self.holders.0, self.holders.1, self.component
        )
    }
}

impl std::error::Error for Inconsistent {}

/// The holders of share component k: party k (as `a`) and party k − 1 mod 3 (as `b`).
pub fn holders(component: usize) -> (PartyId, PartyId) {
    (component % 3, (component + 2) % 3)
}

/// The share components (0, 1, 2) whose two copies in `pairs` disagree, in order.
pub fn mismatches<R: Ring>(pairs: &[Share<R>; 3]) -> Vec<usize> {
    (0..3)
        .filter(|&k| pairs[k].a != pairs[(k + 2) % 3].b)
        .collect()
}

/// Client side: the value behind three pairs, or the first share component whose copies
/// disagree.
pub fn reconstruct<R: Ring>(pairs: &[Share<R>; 3]) -> std::result::Result<R, Inconsistent> {
    if let Some(&component) = mismatches(pairs).first() {
        return Err(Inconsistent {
            component,
            holders: holders(component),
        });
    }
    Ok(pairs[0].a + pairs[1].a + pairs[2].a)
}

/// Who is to blame for the mismatching components, assuming at most one faulty party:
/// one mismatch names both holders; two mismatches name the one party holding both
/// components; three mismatches cannot come from one party, so all three are named.
pub fn suspect(mismatched: &[usize]) -> Vec<PartyId> {
    match mismatched {
        [] => vec![],
        [k] => {
            let (p, q) = holders(*k);
            vec![p, q]
        }
        // Party j holds components j and j + 1.
        [k, l] => {
            let j = if (k + 1) % 3 == *l { *k } else { *l };
            vec![j]
        }
        _ => vec![0, 1, 2],
    }
}

/// Reconstruction failed: the mismatching components and who is to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconstructError {
    /// The share components whose copies disagree.
    pub mismatched: Vec<usize>,
    /// The suspect parties, see [`suspect`]: one party when it can be determined.
    pub suspects: Vec<PartyId>,
}

impl fmt::Display for ReconstructError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.mismatched.as_slice(), self.suspects.as_slice()) {
            ([k], _) => Inconsistent {
                component: *k,
                holders: holders(*k),
            }
            .fmt(f),
            (_, [p]) => write!(
                f,
                "party {p} sent share components {:?} that both other parties contradict; it is faulty",
                self.mismatched
            ),
            _ => write!(
                f,
                "share components {:?} all disagree; more than one party is faulty",
                self.mismatched
            ),
        }
    }
}

impl std::error::Error for ReconstructError {}

/// Like [`reconstruct`], but on failure names a single suspect when one can be determined.
pub fn reconstruct_checked<R: Ring>(
    pairs: &[Share<R>; 3],
) -> std::result::Result<R, ReconstructError> {
    let mismatched = mismatches(pairs);
    if mismatched.is_empty() {
        return Ok(pairs[0].a + pairs[1].a + pairs[2].a);
    }
    let suspects = suspect(&mismatched);
    Err(ReconstructError {
        mismatched,
        suspects,
    })
}

/// The same values mod 2^64: reduction is a ring homomorphism, so it applies to each
/// component locally.
pub fn low64(x: &[Share<Z128>]) -> Vec<Share<Z64>> {
    x.iter()
        .map(|v| Share {
            a: z128_to_z64(v.a),
            b: z128_to_z64(v.b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ring::{Z128, Z64};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn split_reconstruct_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..100 {
            let v = Z64::random(&mut rng);
            assert_eq!(reconstruct(&split(v, &mut rng)), Ok(v));
            let w = Z128::random(&mut rng);
            assert_eq!(reconstruct_checked(&split(w, &mut rng)), Ok(w));
        }
        // Fresh randomness: two splits of the same value differ.
        let v = Z64(42);
        assert_ne!(split(v, &mut rng), split(v, &mut rng));
    }

    #[test]
    fn tampered_component_names_its_holders() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for party in 0..3 {
            for field in 0..2 {
                let mut pairs = split(Z64(1234), &mut rng);
                if field == 0 {
                    pairs[party].a += Z64(1);
                } else {
                    pairs[party].b += Z64(1);
                }
                let component = (party + field) % 3;
                let err = reconstruct(&pairs).unwrap_err();
                assert_eq!(err.component, component);
                assert_eq!(err.holders, holders(component));
                assert!(err.holders.0 == party || err.holders.1 == party);
                let checked = reconstruct_checked(&pairs).unwrap_err();
                assert_eq!(checked.mismatched, vec![component]);
                assert!(checked.suspects.contains(&party));
                assert_eq!(checked.suspects.len(), 2);
            }
        }
        let mut pairs = split(Z64(1), &mut rng);
        pairs[0].a += Z64(5);
        assert_eq!(
            reconstruct(&pairs).unwrap_err().to_string(),
            "parties 0 and 2 sent different values of share component 0; one of them is faulty"
        );
    }

    #[test]
    fn party_lying_on_both_components_is_the_suspect() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for party in 0..3 {
            let mut pairs = split(Z128(99), &mut rng);
            pairs[party].a += Z128(1);
            pairs[party].b += Z128(3);
            let err = reconstruct_checked(&pairs).unwrap_err();
            assert_eq!(err.suspects, vec![party]);
            assert!(err.to_string().contains(&format!("party {party} ")));
        }
        let mut pairs = split(Z128(99), &mut rng);
        for p in pairs.iter_mut() {
            p.a += Z128(1);
        }
        let err = reconstruct_checked(&pairs).unwrap_err();
        assert_eq!(err.mismatched, vec![0, 1, 2]);
        assert!(err.to_string().contains("more than one"));
    }

    #[test]
    fn local_ops() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let (x, y, c) = (Z64(100), Z64(30), Z64(7));
        let sx = split(x, &mut rng);
        let sy = split(y, &mut rng);
        let apply = |f: &dyn Fn(usize) -> Share<Z64>| reconstruct(&[f(0), f(1), f(2)]).unwrap();
        assert_eq!(apply(&|i| sx[i].add(sy[i])), x + y);
        assert_eq!(apply(&|i| sx[i] - sy[i]), x - y);
        assert_eq!(apply(&|i| -sx[i]), -x);
        assert_eq!(apply(&|i| sx[i].mul_public(c)), x * c);
        assert_eq!(apply(&|i| sx[i].add_public(i, c)), x + c);
        let v = add_vec(&sx, &sy).unwrap();
        assert_eq!(reconstruct(&[v[0], v[1], v[2]]), Ok(x + y));
        assert!(add_vec(&sx, &sy[..2]).is_err());
        assert!(matches!(
            sub_vec(&sx[..1], &sy),
            Err(EngineError::Invalid(_))
        ));
        // sum over "party 0's view" of three sharings: check via all parties.
        let vals = [Z64(1), Z64(2), Z64(u64::MAX)];
        let shared: Vec<[Share<Z64>; 3]> = vals.iter().map(|v| split(*v, &mut rng)).collect();
        let per_party: Vec<Share<Z64>> = (0..3)
            .map(|i| sum(&shared.iter().map(|s| s[i]).collect::<Vec<_>>()))
            .collect();
        assert_eq!(
            reconstruct(&[per_party[0], per_party[1], per_party[2]]),
            Ok(Z64(2))
        );
        assert_eq!(sum::<Z64>(&[]), Share::zero());
    }
}
