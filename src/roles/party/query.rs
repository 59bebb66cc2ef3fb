//! A party's side of one query: it checks that the coordinator named a closed epoch this party
//! holds in full, agrees with the two other parties whether to hand out the answer they
//! released before or to compute a fresh one (and whether every party's budget allows that),
//! runs the MPC program, and keeps the answer.
//!
//! Nothing here opens a value; result shares go only to the holder of the result secret.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::SeedableRng;
use tracing::info;

use super::{State, SESSION_TIMEOUT};
use crate::config::Dataset;
use crate::engine::{Expect, Outgoing, Security, Session, Share, Transport, Z128};
use crate::net::session::QuicTransport;
use crate::stats::{program, Query, Stat};
use crate::store::party::{Charge, Release};
use crate::wire::{short, Id, QuerySpec};

/// Longest refusal reason a party shares with the two others.
const MAX_REASON: usize = 512;

/// What a query costs at this dataset when computed fresh.
fn charge(ds: &Dataset, q: &Query) -> Charge {
    match &ds.privacy {
        // The count of an epoch is public: it spends nothing.
        Some(_) if q.stat == Stat::Count => Charge::Free,
        Some(p) => Charge::Private {
            releases: p.releases,
        },
        None if q.is_probing() => Charge::Probing {
            cap: ds.probing_per_epoch,
        },
        None => Charge::Free,
    }
}

/// The key a release is kept under: the query's key, bound to the mode that computes it,
/// so an answer is always served with the mode that produced it (a semi-honest release
/// is not reported as malicious-secure after the cluster changes mode). Semi-honest keys
/// are the query keys themselves, as releases were kept before modes existed.
fn release_key(q: &Query, security: Security) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    match security {
        Security::SemiHonest => q.key(),
        Security::Malicious => {
            let mut h = Sha256::new();
            h.update(b"mpcstats/release-key/v1");
            h.update(q.key());
            h.update(security.name().as_bytes());
            h.finalize().into()
        }
    }
}

/// Answers `spec` over `epoch` in MPC session `session`.
pub(super) async fn answer(
    state: &State,
    session: Id,
    spec: &QuerySpec,
    epoch: u64,
) -> Result<Release> {
    let ds = state.cluster.dataset(&spec.dataset)?;
    let query = Query::new(spec, ds)?;
    let upto = ds.epoch_end(epoch)?;
    state.store.pin_epoch_size(&ds.name, ds.epoch_size())?;
    // Every release is over a whole closed epoch that this party holds: the coordinator
    // cannot make it compute over any other prefix.
    let rows = state.store.committed(&ds.name, upto).map_err(|e| {
        anyhow::anyhow!(
            "epoch {epoch} of {} is not closed at this party: {e:#}",
            ds.name
        )
    })?;
    let key = release_key(&query, state.cluster.security);
    let kept = state.store.release(&ds.name, epoch, &key)?;
    let reserved = state
        .store
        .reserve(&ds.name, epoch, &key, charge(ds, &query));
    let mine = Plan {
        what: what(&ds.name, epoch, &key),
        kept: kept.is_some(),
        refusal: reserved.as_ref().err().map(|e| format!("{e:#}")),
    };
    let reserved = reserved.unwrap_or_default();
    let started = Instant::now();
    let mut mpc = match start(state, session).await {
        Ok(m) => m,
        Err(e) => {
            state.store.cancel(reserved)?;
            return Err(e);
        }
    };
    let plans = match agree(&mut mpc, &mine).await {
        Ok(p) => p,
        Err(e) => {
            state.store.cancel(reserved)?;
            return Err(e.into());
        }
    };
    // Under differential privacy the answer reports the releases spent so far.
    let spent_now = |state: &State| -> Result<Option<u32>> {
        match &ds.privacy {
            Some(_) => Ok(Some(state.store.releases_spent(&ds.name)?)),
            None => Ok(None),
        }
    };
    if plans.iter().any(|p| p.what != mine.what) {
        state.store.cancel(reserved)?;
        mpc.into_transport().finish();
        bail!(
            "the parties were asked different queries or epochs in one session; the \
             coordinator is faulty"
        );
    }
    if plans.iter().all(|p| p.kept) {
        state.store.cancel(reserved)?;
        mpc.into_transport().finish();
        let mut kept = kept.expect("this party kept it");
        kept.spent = spent_now(state)?;
        info!(
            "query {}: {} over epoch {epoch} of {}: the answer released before",
            short(&session),
            query.stat.name(),
            ds.name
        );
        return Ok(kept);
    }
    if let Some((j, reason)) = plans
        .iter()
        .enumerate()
        .find_map(|(j, p)| p.refusal.as_ref().map(|r| (j, r)))
    {
        state.store.cancel(reserved)?;
        mpc.into_transport().finish();
        if j == state.id {
            bail!("{reason}");
        }
        bail!("party {j} refused: {reason}");
    }
    let shares: Vec<Share<Z128>> = rows
        .iter()
        .map(|&(a, b)| Share {
            a: Z128(a),
            b: Z128(b),
        })
        .collect();
    let mut s = mpc;
    let out = program::run(&mut s, &query, shares, ds.min_cohort).await?;
    let c = s.counters();
    s.into_transport().finish();
    info!(
        "query {}: {} over epoch {epoch} of {} ({} contributions) in {:.1} ms, {} rounds, {} bytes sent",
        short(&session),
        query.stat.name(),
        ds.name,
        out.count,
        started.elapsed().as_secs_f64() * 1e3,
        c.rounds,
        c.bytes_sent
    );
    let mut release = Release {
        count: out.count,
        pairs: out.values.iter().map(|s| (s.a.0, s.b.0)).collect(),
        spent: reserved.spent,
    };
    state.store.keep_release(&ds.name, epoch, &key, &release)?;
    release.spent = spent_now(state)?;
    Ok(release)
}

/// One party's position before a query: whether it kept an earlier answer, and why it
/// refuses a fresh computation if it does.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    /// What this party was asked: the dataset, the epoch and the query's key, hashed.
    what: [u8; 32],
    kept: bool,
    refusal: Option<String>,
}

/// The hash every party's plan carries, so that a coordinator cannot ask the three parties
/// different things in one session.
fn what(dataset: &str, epoch: u64, key: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"mpcstats/release/v1");
    h.update((dataset.len() as u64).to_le_bytes());
    h.update(dataset.as_bytes());
    h.update(epoch.to_le_bytes());
    h.update(key);
    h.finalize().into()
}

impl Plan {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.what.to_vec();
        out.push(u8::from(self.kept));
        if let Some(r) = &self.refusal {
            let mut end = r.len().min(MAX_REASON);
            while !r.is_char_boundary(end) {
                end -= 1;
            }
            out.extend_from_slice(&r.as_bytes()[..end]);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Plan> {
        let (what, rest) = bytes.split_at_checked(32)?;
        let (&kept, reason) = rest.split_first()?;
        if kept > 1 || reason.len() > MAX_REASON {
            return None;
        }
        let refusal = if reason.is_empty() {
            None
        } else {
            Some(String::from_utf8(reason.to_vec()).ok()?)
        };
        Some(Plan {
            what: what.try_into().ok()?,
            kept: kept == 1,
            refusal,
        })
    }
}

async fn start(state: &State, session: Id) -> Result<Session<QuicTransport>> {
    let transport = state.mesh.session(session, SESSION_TIMEOUT).await?;
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    Ok(Session::start_with(state.id, transport, &mut rng, state.cluster.security).await?)
}

/// One round: every party tells both others its plan. Returns the three plans by party id.
async fn agree<T: Transport>(s: &mut Session<T>, mine: &Plan) -> crate::engine::Result<[Plan; 3]> {
    let me = s.id();
    let bytes = mine.encode();
    let inc = s
        .exchange(
            Outgoing {
                next: Some(bytes.clone()),
                prev: Some(bytes),
            },
            Expect {
                next: true,
                prev: true,
            },
        )
        .await?;
    let parse = |m: Option<Vec<u8>>, who: &'static str| {
        m.as_deref()
            .and_then(Plan::decode)
            .ok_or_else(|| crate::engine::EngineError::Malformed {
                peer: who,
                expected: "a release plan".into(),
                found: "something else".into(),
            })
    };
    let next = parse(inc.next, "next")?;
    let prev = parse(inc.prev, "previous")?;
    let mut plans: [Plan; 3] = std::array::from_fn(|_| mine.clone());
    plans[(me + 1) % 3] = next;
    plans[(me + 2) % 3] = prev;
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_round_trip_and_malformed_ones_are_refused() {
        for p in [
            Plan {
                what: [1; 32],
                kept: true,
                refusal: None,
            },
            Plan {
                what: [2; 32],
                kept: false,
                refusal: Some("budget".into()),
            },
        ] {
            assert_eq!(Plan::decode(&p.encode()), Some(p));
        }
        assert_eq!(Plan::decode(&[]), None);
        assert_eq!(Plan::decode(&[0; 31]), None);
        assert_eq!(Plan::decode(&[[0; 32].as_slice(), &[2]].concat()), None);
        assert_eq!(
            Plan::decode(&[[0; 32].as_slice(), &[0, 0xff]].concat()),
            None
        );
        assert_eq!(Plan::decode(&vec![0; 32 + MAX_REASON + 2]), None);
        let long = Plan {
            what: [3; 32],
            kept: false,
            refusal: Some("é".repeat(MAX_REASON)),
        };
        assert!(Plan::decode(&long.encode()).is_some());
    }
}
