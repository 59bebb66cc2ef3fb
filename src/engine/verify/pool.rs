//! The AND proof's large buffers (the gate record, the group form, the plain vectors),
//! handed from one session to the next within a process. A malicious session of 10^5
//! values proves batches of up to [`super::MAX_PENDING_WORDS`] words, whose vectors take
//! tens of megabytes per party; glibc returns freed blocks that large to the kernel, so
//! without this every session faulted them in afresh (a quarter of the CPU time of a
//! malicious median of 10^5 went to clearing fresh pages). This module holds the pool
//! only; what the buffers mean is in `and_proof` and `and_levels`.

use std::sync::Mutex;

use super::and_levels::GroupBufs;
use super::gf64::Gf64;
use super::AndWord;

/// One session's reusable proof buffers.
#[derive(Default)]
pub(crate) struct ProofBufs {
    pub pending: Vec<AndWord>,
    pub spare: [Vec<Gf64>; 2],
    pub groups: GroupBufs,
}

/// Sets kept at most: one per party of a process that runs all three (the demo, the
/// benchmarks); a party's own process runs its sessions one at a time and keeps one.
pub(crate) const POOLED: usize = 3;

/// A bounded pool of buffer sets.
pub(crate) struct Pool {
    sets: Mutex<Vec<ProofBufs>>,
}

impl Pool {
    pub const fn new() -> Self {
        Pool {
            sets: Mutex::new(Vec::new()),
        }
    }

    /// A set to use: a returned one if any (its allocations kept), else an empty one.
    pub fn take(&self) -> ProofBufs {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.pop().unwrap_or_default()
    }

    /// Returns a set for the next session, emptied but with its allocations, unless the
    /// pool already holds [`POOLED`] sets (then it is freed).
    pub fn give(&self, mut set: ProofBufs) {
        set.pending.clear();
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if sets.len() < POOLED {
            sets.push(set);
        }
    }
}

/// The process's pool, shared by every session in it.
pub(crate) static POOL: Pool = Pool::new();

#[cfg(test)]
mod tests {
    use super::*;

    /// A returned set comes back with its allocations and no content; the pool keeps at
    /// most POOLED sets.
    #[test]
    fn sets_come_back_with_their_allocations_and_the_pool_is_bounded() {
        let pool = Pool::new();
        let mut a = pool.take();
        assert_eq!(a.pending.capacity(), 0);
        a.pending = Vec::with_capacity(1000);
        a.pending.push(AndWord::default());
        a.spare[1] = vec![Gf64::ZERO; 500];
        pool.give(a);
        let b = pool.take();
        assert!(b.pending.is_empty() && b.pending.capacity() >= 1000);
        assert_eq!(b.spare[1].capacity(), 500);
        assert_eq!(pool.take().pending.capacity(), 0, "only one set was given");
        for _ in 0..POOLED + 2 {
            pool.give(ProofBufs::default());
        }
        assert_eq!(pool.sets.lock().unwrap().len(), POOLED);
    }
}
