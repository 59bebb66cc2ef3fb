//! The coordinator's rate limits: a token bucket per client address and kind of request
//! (every request, share intents, queries), each refilled continuously at its rate from
//! `[limits]` up to one minute's worth. Every change is written through to the
//! coordinator's store and read back at start, so a restart (even `kill -9`) hands no
//! address a fresh bucket. Holds rates and counts only: never a request's content.
//!
//! Submissions to the parties need a ticket each, so the intent bucket bounds them too. There
//! is no bucket per attested account here: the coordinator never learns account ids (that
//! would link a provider's accounts across datasets); the parties allow one contribution
//! per account and dataset, and the notary caps sessions per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::config::Limits;
use crate::store::coordinator::CoordinatorStore;

/// A kind of request with its own bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Every request that starts work (share intents and queries).
    Any,
    Intent,
    Query,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Any, Kind::Intent, Kind::Query];

    /// The `[limits]` key that sets this bucket's rate.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Any => "requests_per_minute",
            Kind::Intent => "intents_per_minute",
            Kind::Query => "queries_per_minute",
        }
    }

    /// What the bucket counts, for a refusal.
    pub fn counts(self) -> &'static str {
        match self {
            Kind::Any => "requests",
            Kind::Intent => "share intents",
            Kind::Query => "queries",
        }
    }

    fn of(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    fn rate(self, limits: &Limits) -> u32 {
        match self {
            Kind::Any => limits.requests_per_minute,
            Kind::Intent => limits.intents_per_minute,
            Kind::Query => limits.queries_per_minute,
        }
    }
}

/// A request refused by the bucket of `kind`, whose rate is `per_minute`.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    pub kind: Kind,
    pub per_minute: u32,
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate limit: at most {} {} per minute from one address ({}); try again later",
            self.per_minute,
            self.kind.counts(),
            self.kind.key()
        )
    }
}

/// Buckets kept in memory before the least recent are forgotten (they are full again
/// after a minute, so forgetting one that old changes nothing).
const MAX_BUCKETS: usize = 100_000;

pub struct RateLimiter {
    rates: HashMap<Kind, f64>,
    /// (kind, address) → (tokens, Unix milliseconds of the last update).
    buckets: Mutex<HashMap<(Kind, IpAddr), (f64, i64)>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RateLimiter {
    /// The limiter for `limits`, with the buckets `store` kept (those for unknown kinds or
    /// addresses that do not parse are dropped).
    pub fn load(limits: &Limits, store: &CoordinatorStore) -> Result<RateLimiter> {
        let rates = Kind::ALL
            .into_iter()
            .map(|k| (k, f64::from(k.rate(limits).max(1))))
            .collect();
        store.prune_rate_buckets(now_ms() - 60_000)?;
        let mut buckets = HashMap::new();
        for (kind, address, tokens, at) in store.rate_buckets()? {
            if let (Some(kind), Ok(ip)) = (Kind::of(&kind), address.parse::<IpAddr>()) {
                buckets.insert((kind, ip), (tokens, at));
            }
        }
        Ok(RateLimiter {
            rates,
            buckets: Mutex::new(buckets),
        })
    }

    /// Takes one token from each bucket of `kinds` for `ip`, or none if any is empty (the
    /// first empty one is named). The new states are written to `store` before this
    /// returns.
    pub fn take(
        &self,
        ip: IpAddr,
        kinds: &[Kind],
        store: &CoordinatorStore,
    ) -> Result<std::result::Result<(), Limited>> {
        let now = now_ms();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > MAX_BUCKETS {
            b.retain(|_, (_, at)| now - *at < 60_000);
        }
        let mut refilled = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let rate = self.rates[&kind];
            let (tokens, at) = b.get(&(kind, ip)).copied().unwrap_or((rate, now));
            // A clock that went back refills nothing.
            let elapsed = (now - at).max(0) as f64 / 60_000.0;
            let tokens = (tokens + elapsed * rate).min(rate);
            if tokens < 1.0 {
                return Ok(Err(Limited {
                    kind,
                    per_minute: rate as u32,
                }));
            }
            refilled.push((kind, tokens - 1.0));
        }
        for (kind, tokens) in refilled {
            b.insert((kind, ip), (tokens, now));
            store.save_rate_bucket(kind.key(), &ip.to_string(), tokens, now)?;
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(any: u32, intents: u32, queries: u32) -> Limits {
        Limits {
            requests_per_minute: any,
            intents_per_minute: intents,
            queries_per_minute: queries,
            ..Limits::default()
        }
    }

    #[test]
    fn each_kind_has_its_own_bucket_and_all_of_them_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = CoordinatorStore::open(&dir.path().join("c.db")).unwrap();
        let l = limits(5, 2, 3);
        let rl = RateLimiter::load(&l, &store).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let intent = [Kind::Any, Kind::Intent];
        let query = [Kind::Any, Kind::Query];
        // Two intents a minute: the third is refused naming intents_per_minute.
        assert_eq!(rl.take(ip, &intent, &store).unwrap(), Ok(()));
        assert_eq!(rl.take(ip, &intent, &store).unwrap(), Ok(()));
        let refused = rl.take(ip, &intent, &store).unwrap().unwrap_err();
        assert_eq!(refused.kind, Kind::Intent);
        assert!(refused
            .to_string()
            .contains("at most 2 share intents per minute"));
        // Queries have their own bucket; the address's five requests run out first.
        assert_eq!(rl.take(ip, &query, &store).unwrap(), Ok(()));
        assert_eq!(rl.take(ip, &query, &store).unwrap(), Ok(()));
        assert_eq!(rl.take(ip, &query, &store).unwrap(), Ok(()));
        let refused = rl.take(ip, &query, &store).unwrap().unwrap_err();
        assert_eq!(refused.kind, Kind::Any, "{refused}");
        // A refused request takes no token: another address is untouched.
        assert_eq!(rl.take(other, &intent, &store).unwrap(), Ok(()));
        // A limiter loaded from the same store (a restart) remembers every bucket.
        drop(rl);
        let rl = RateLimiter::load(&l, &store).unwrap();
        assert!(rl.take(ip, &intent, &store).unwrap().is_err());
        assert!(rl.take(ip, &query, &store).unwrap().is_err());
        assert_eq!(rl.take(other, &intent, &store).unwrap(), Ok(()));
        assert!(rl.take(other, &intent, &store).unwrap().is_err());
    }

    #[test]
    fn buckets_refill_over_time_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = CoordinatorStore::open(&dir.path().join("c.db")).unwrap();
        let ip = "192.0.2.9";
        // Written 30 s ago with no tokens left: half a minute refills half the rate.
        store
            .save_rate_bucket("intents_per_minute", ip, 0.0, now_ms() - 30_000)
            .unwrap();
        // Written over a minute ago: pruned at load (it would be full again).
        store
            .save_rate_bucket("queries_per_minute", ip, 0.0, now_ms() - 61_000)
            .unwrap();
        store
            .save_rate_bucket("no_such_limit", ip, 0.0, now_ms())
            .unwrap();
        let rl = RateLimiter::load(&limits(1000, 4, 1), &store).unwrap();
        let mut kept: Vec<String> = store
            .rate_buckets()
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        kept.sort();
        assert_eq!(kept, ["intents_per_minute", "no_such_limit"]);
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(rl.take(ip, &[Kind::Intent], &store).unwrap(), Ok(()));
        assert_eq!(rl.take(ip, &[Kind::Intent], &store).unwrap(), Ok(()));
        assert!(rl.take(ip, &[Kind::Intent], &store).unwrap().is_err());
        // The pruned bucket starts full again.
        assert_eq!(rl.take(ip, &[Kind::Query], &store).unwrap(), Ok(()));
        assert!(rl.take(ip, &[Kind::Query], &store).unwrap().is_err());
    }
}
