//! Fair admission in front of the coordinator's work: a bounded FIFO queue before a fixed
//! number of slots, and caps on what one client address may hold at once.
//!
//! A request that finds every slot taken waits in the queue and can learn its position; a
//! request that finds the queue full as well is told at once to come back later, with an
//! estimate of when, so that no client ever waits on an unbounded line. This module holds
//! the bookkeeping only: no networking, no storage, nothing about shares.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The queue is full: nothing was started; come back after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// `slots` requests at work at once, at most `capacity` more waiting in arrival order.
pub struct Queue {
    slots: Arc<Semaphore>,
    slot_count: usize,
    capacity: usize,
    next: AtomicU64,
    /// Arrival numbers of the requests waiting now.
    waiting: Mutex<BTreeSet<u64>>,
    /// Moving average of how long a slot is held, in milliseconds (0: none measured yet).
    avg_ms: AtomicU64,
}

impl Queue {
    pub fn new(slots: usize, capacity: usize) -> Arc<Queue> {
        let slots = slots.max(1);
        Arc::new(Queue {
            slots: Arc::new(Semaphore::new(slots)),
            slot_count: slots,
            capacity,
            next: AtomicU64::new(0),
            waiting: Mutex::new(BTreeSet::new()),
            avg_ms: AtomicU64::new(0),
        })
    }

    /// Joins the line: a [`Place`] to wait on, or [`Busy`] when no slot is free and
    /// `capacity` requests already wait.
    pub fn join(self: &Arc<Self>) -> Result<Place, Busy> {
        let mut waiting = lock(&self.waiting);
        if self.slots.available_permits() == 0 && waiting.len() >= self.capacity {
            return Err(Busy {
                retry_after: self.estimate(waiting.len()),
            });
        }
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        waiting.insert(number);
        Ok(Place {
            queue: self.clone(),
            number,
        })
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        lock(&self.waiting).len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests holding a slot now.
    pub fn active(&self) -> usize {
        self.slot_count - self.slots.available_permits()
    }

    /// When a newcomer behind `waiting` others would likely get a slot: the average hold
    /// time per round of slots, at least 1 s and at most 5 minutes.
    fn estimate(&self, waiting: usize) -> Duration {
        let avg = match self.avg_ms.load(Ordering::Relaxed) {
            0 => 1000,
            ms => ms,
        };
        let rounds = (waiting / self.slot_count + 1) as u64;
        Duration::from_millis(avg.saturating_mul(rounds))
            .clamp(Duration::from_secs(1), Duration::from_secs(300))
    }

    fn record(&self, held: Duration) {
        let ms = (held.as_millis() as u64).max(1);
        let old = self.avg_ms.load(Ordering::Relaxed);
        let new = if old == 0 { ms } else { (old * 7 + ms) / 8 };
        self.avg_ms.store(new, Ordering::Relaxed);
    }
}

/// A request's place in the line; leaving (dropping it) frees the place.
pub struct Place {
    queue: Arc<Queue>,
    number: u64,
}

impl Place {
    /// 1 for the next request to get a slot.
    pub fn position(&self) -> u32 {
        let waiting = lock(&self.queue.waiting);
        waiting.range(..self.number).count() as u32 + 1
    }

    /// Waits for a slot (in arrival order: tokio's semaphore is fair).
    pub async fn slot(&self) -> Slot {
        let permit = self
            .queue
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the queue's semaphore is never closed");
        lock(&self.queue.waiting).remove(&self.number);
        Slot {
            _permit: permit,
            queue: self.queue.clone(),
            started: Instant::now(),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.queue.waiting).remove(&self.number);
    }
}

/// A held slot; dropping it frees the slot and feeds the wait estimate.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    queue: Arc<Queue>,
    started: Instant,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.record(self.started.elapsed());
    }
}

/// At most `per_key` things held at once per client address.
pub struct Caps {
    per_key: u32,
    held: Mutex<HashMap<IpAddr, u32>>,
}

impl Caps {
    pub fn new(per_key: u32) -> Arc<Caps> {
        Arc::new(Caps {
            per_key: per_key.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// One more for `ip`, or `None` when it already holds `per_key`.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let mut held = lock(&self.held);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.per_key {
            return None;
        }
        *n += 1;
        Some(Held {
            caps: self.clone(),
            ip,
        })
    }

    /// What `ip` holds now.
    pub fn holding(&self, ip: IpAddr) -> u32 {
        lock(&self.held).get(&ip).copied().unwrap_or(0)
    }
}

/// One held unit of a [`Caps`]; dropping it gives it back.
pub struct Held {
    caps: Arc<Caps>,
    ip: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = lock(&self.caps.held);
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_is_busy_at_once_and_positions_follow_arrival() {
        let q = Queue::new(2, 3);
        let a = q.join().unwrap();
        let b = q.join().unwrap();
        let (sa, sb) = (a.slot().await, b.slot().await);
        assert_eq!(q.active(), 2);
        // Both slots taken: three may wait, in arrival order.
        let w: Vec<Place> = (0..3).map(|_| q.join().unwrap()).collect();
        let positions: Vec<u32> = w.iter().map(|p| p.position()).collect();
        assert_eq!(positions, vec![1, 2, 3]);
        // The fourth is refused at once, with an estimate of at least a second.
        let busy = q.join().err().expect("full");
        assert!(busy.retry_after >= Duration::from_secs(1));
        // Leaving the line moves those behind forward and makes room.
        let mut w = w.into_iter();
        let first = w.next().unwrap();
        drop(first);
        let rest: Vec<Place> = w.collect();
        assert_eq!(rest[0].position(), 1);
        assert_eq!(rest[1].position(), 2);
        let again = q.join().unwrap();
        assert_eq!(again.position(), 3);
        // A freed slot goes to the head of the line.
        drop(sa);
        let s = tokio::time::timeout(Duration::from_secs(1), rest[0].slot())
            .await
            .expect("the head gets the freed slot");
        assert_eq!(rest[1].position(), 1);
        assert_eq!(q.len(), 2);
        drop((s, sb));
    }

    #[test]
    fn caps_hold_at_most_per_key_and_give_back_on_drop() {
        let caps = Caps::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = caps.take(ip).unwrap();
        let _b = caps.take(ip).unwrap();
        assert!(caps.take(ip).is_none(), "a third one is over the cap");
        assert!(
            caps.take(other).is_some(),
            "another address has its own cap"
        );
        drop(a);
        assert_eq!(caps.holding(ip), 1);
        assert!(caps.take(ip).is_some());
    }
}
