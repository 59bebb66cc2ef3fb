//! A party's intake of contributions: the checks before anything is stored.
//!
//! Every submission, proven or not, runs the same lockstep protocol with the two other
//! parties, so that all three reach the same verdict and none is left waiting:
//! 1. one round of component hashes: each replicated component (of the value, or of the AES
//!    keys of a proven session) is compared by its two holders, by a hash that goes only to
//!    the other holder (the third party could test guesses of the value against it);
//! 2. one round of verdicts: each party tells both neighbours whether its own checks passed
//!    (the component hash, and for proven contributions the public checks of the attestation
//!    and the records);
//! 3. an MPC session: for proven contributions the TLS records are decrypted and checked and
//!    the value parsed inside the MPC (`oracle::mpc`), the opened response checked against the
//!    template and the account id tagged; then the range check of the value, opening only
//!    the verdict;
//! 4. the pair is stored as pending, with the single-use markers of a proven contribution.
//!
//! Steps 1 to 3 run on one transport, so the MPC session's counters include the agreement
//! rounds before it; the intake logs them per contribution.

use std::ops::Range;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::{lock, ticket_hash, State, SESSION_TIMEOUT};
use crate::config::{Dataset, ProofPolicy};
use crate::engine::{unpack, Expect, Outgoing, PartyId, Session, Share, Transport, Z128};
use crate::oracle::admit;
use crate::oracle::handshake::TlsVersion;
use crate::oracle::mpc::{verify_session, KeyPairs, PublicSession};
use crate::oracle::template::RequestLayout;
use crate::store::party::Markers;
use crate::wire::{short, FromParty, Id, ProvenSubmission, Ticket};

/// What a provider submitted to this party.
pub enum Submission {
    /// This party's pair (x_i, x_{i+1}) of an unproven value.
    Plain { a: u128, b: u128 },
    /// A proven session and this party's pairs of XOR shares of its AES keys.
    Proven(Box<ProvenSubmission>),
}

/// Handles a provider's submission: ticket, checks, storage; answers the provider and tells
/// the coordinator's waiting `Expect` the verdict.
pub async fn on_submit(
    state: &Arc<State>,
    contribution: Id,
    ticket: Ticket,
    submission: Submission,
) -> FromParty {
    let expected = {
        let mut map = lock(&state.expected);
        match map.get(&contribution) {
            None => {
                return FromParty::Refused {
                    reason: "unknown contribution, or its ticket was already used".into(),
                }
            }
            Some(e) if e.ticket_hash != ticket_hash(&ticket) => {
                return FromParty::Refused {
                    reason: "the ticket does not match this contribution".into(),
                }
            }
            Some(_) => map.remove(&contribution).expect("present"),
        }
    };
    let _ = expected.received.send(());
    let result = check_and_store(
        state,
        &contribution,
        &expected.dataset,
        expected.attestation,
        submission,
    )
    .await
    .map_err(|e| format!("{e:#}"));
    let reply = match &result {
        Ok(()) => FromParty::Stored,
        Err(reason) => {
            warn!("contribution {} refused: {reason}", short(&contribution));
            FromParty::Refused {
                reason: reason.clone(),
            }
        }
    };
    let _ = expected.done.send(result);
    reply
}

/// Hash by which the two holders of a share component compare it.
fn component_hash(contribution: &Id, component: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"mpcstats/component/v1");
    h.update(contribution);
    h.update(component);
    h.finalize().to_vec()
}

/// The component this party holds as `a` (shared with the previous party) and as `b`
/// (shared with the next), as bytes.
fn components(s: &Submission) -> (Vec<u8>, Vec<u8>) {
    match s {
        Submission::Plain { a, b } => (a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()),
        Submission::Proven(p) => (
            [p.client_key.0, p.server_key.0].concat(),
            [p.client_key.1, p.server_key.1].concat(),
        ),
    }
}

/// What the public checks of a proven submission establish, for the MPC that follows.
struct Checked {
    /// The attestation's id (its single-use marker).
    id: [u8; 32],
    /// The attested TLS version: it decides the record format.
    version: TlsVersion,
    /// The request head for the declared parameter lengths.
    layout: RequestLayout,
}

/// Public checks of a proven submission. `checked` is the id of the attestation the
/// coordinator checked before it issued the ticket.
fn public_checks(
    ds: &Dataset,
    p: &ProvenSubmission,
    notary_key: &[u8; 32],
    checked: Option<[u8; 32]>,
) -> Result<Checked> {
    let template = ds
        .template
        .as_ref()
        .ok_or_else(|| anyhow!("dataset {} has no template", ds.name))?;
    if p.template_hash != template.hash(&ds.name) {
        bail!(
            "the proof was made for another template than dataset {}'s (template hash differs)",
            ds.name
        );
    }
    let id = admit::attestation_id(&p.attestation);
    if checked != Some(id) {
        bail!(
            "the submission's attestation is not the one the coordinator checked for this ticket"
        );
    }
    let a = admit::check_attestation(&p.attestation, notary_key, template, admit::now())?;
    admit::check_records(&a, &p.client_records, &p.server_records)?;
    let version = TlsVersion::from_code(a.tls_version)
        .ok_or_else(|| anyhow!("attested TLS version {:#06x}", a.tls_version))?;
    let layout = template
        .request_layout(&p.params)
        .context("the declared query parameter lengths")?;
    Ok(Checked {
        id,
        version,
        layout,
    })
}

/// Steps 1 and 2: component hashes, then everyone's verdict. Fails on every party alike.
/// The two rounds count in `t`'s counters.
async fn agree<T: Transport>(
    t: &mut T,
    me: PartyId,
    contribution: &Id,
    sub: &Submission,
    local: &Result<Option<Checked>>,
) -> Result<()> {
    let (a, b) = components(sub);
    let out = Outgoing {
        next: Some(component_hash(contribution, &b)),
        prev: None,
    };
    let expect = Expect {
        next: false,
        prev: true,
    };
    let inc = t.round(out, expect).await?;
    let matched = inc.prev.as_deref() == Some(component_hash(contribution, &a).as_slice());
    // 0: all fine; 1: a component differs; 2: the public checks failed.
    let mine = match (matched, local.is_ok()) {
        (false, _) => 1u8,
        (true, false) => 2,
        (true, true) => 0,
    };
    let flags = t
        .round(
            Outgoing {
                next: Some(vec![mine]),
                prev: Some(vec![mine]),
            },
            Expect {
                next: true,
                prev: true,
            },
        )
        .await?;
    if let Err(e) = local {
        bail!("{e:#}");
    }
    let flag = |m: Option<Vec<u8>>| m.as_deref().and_then(|v| v.first().copied()).unwrap_or(1);
    let verdicts = [
        (me, mine),
        ((me + 1) % 3, flag(flags.next)),
        ((me + 2) % 3, flag(flags.prev)),
    ];
    let disagree: Vec<String> = verdicts
        .iter()
        .filter(|(_, f)| *f == 1)
        // Party p checks component p, which it shares with party p − 1.
        .map(|(p, _)| format!("parties {} and {p} on component {p}", (p + 2) % 3))
        .collect();
    if !disagree.is_empty() {
        bail!("share pairs disagree: {}", disagree.join(", "));
    }
    if let Some((p, _)) = verdicts.iter().find(|(_, f)| *f != 0) {
        bail!("party {p} refused the contribution's proof");
    }
    Ok(())
}

async fn check_and_store(
    state: &State,
    contribution: &Id,
    dataset: &str,
    checked_attestation: Option<[u8; 32]>,
    sub: Submission,
) -> Result<()> {
    let ds = state.cluster.dataset(dataset)?;
    let local: Result<Option<Checked>> = match (&sub, ds.proof) {
        (Submission::Plain { .. }, ProofPolicy::None) => Ok(None),
        (Submission::Proven(p), ProofPolicy::Tls) => state
            .cluster
            .notary_key()
            .and_then(|key| public_checks(ds, p, &key, checked_attestation))
            .map(Some),
        (Submission::Plain { .. }, ProofPolicy::Tls) => {
            Err(anyhow!("dataset {dataset} takes proven contributions only"))
        }
        (Submission::Proven(_), ProofPolicy::None) => {
            Err(anyhow!("dataset {dataset} takes unproven values"))
        }
    };
    let mut t = state.mesh.session(*contribution, SESSION_TIMEOUT).await?;
    agree(&mut t, state.id, contribution, &sub, &local).await?;
    let checked = local?;
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let mut mpc = Session::start_with(state.id, t, &mut rng, state.cluster.security).await?;
    let (x, markers) = match sub {
        Submission::Plain { a, b } => (
            Share {
                a: Z128(a),
                b: Z128(b),
            },
            None,
        ),
        Submission::Proven(p) => {
            let checked = checked.expect("a proven submission passed its public checks");
            let (x, account) = verify_proven(&mut mpc, ds, &p, &checked).await?;
            let markers = Markers {
                attestation: checked.id,
                account_tag: account_tag(&state.account_key, dataset, &account),
            };
            (x, Some(markers))
        }
    };
    range_check(&mut mpc, state, ds, x).await?;
    // Agreement rounds and MPC together: what this contribution cost this party.
    let cost = mpc.counters();
    mpc.into_transport().finish();
    state
        .store
        .put_pending(contribution, dataset, x.a.0, x.b.0, markers)?;
    debug!(
        "contribution {} stored pending: {cost}",
        short(contribution)
    );
    Ok(())
}

/// The TLS session checked and the value parsed in MPC; the opened response checked against
/// the template. Returns this party's share of the value and the account id.
async fn verify_proven<T: Transport>(
    mpc: &mut Session<T>,
    ds: &Dataset,
    p: &ProvenSubmission,
    checked: &Checked,
) -> Result<(Share<Z128>, String)> {
    let template = ds.template.as_ref().expect("checked");
    let window: Range<usize> = usize::try_from(p.value.0)?..usize::try_from(p.value.1)?;
    let public = PublicSession {
        version: checked.version,
        client_records: &p.client_records,
        server_records: &p.server_records,
        client_iv: p.client_iv,
        server_iv: p.server_iv,
        request: &checked.layout,
        value: window.clone(),
        decimals: template.decimals,
        scale: ds.scale,
    };
    let keys = KeyPairs {
        client: p.client_key,
        server: p.server_key,
    };
    let verified = verify_session(mpc, &public, &keys).await?;
    debug!(
        "proven session checked: {}, the server {} close_notify",
        checked.version,
        if verified.close_notify {
            "ended with"
        } else {
            "closed without"
        }
    );
    let account = template.check_response(&verified.response, window)?;
    Ok((verified.value, account))
}

/// Keyed hash of an account id: the same account gives the same tag for this party only.
fn account_tag(key: &[u8; 32], dataset: &str, account: &str) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(dataset.as_bytes());
    ctx.update(&[0]);
    ctx.update(account.as_bytes());
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The value must lie in [0, max]: both bounds in one 128-bit msb circuit; only the verdict
/// is opened. A provider that bypassed its client's checks is refused here.
async fn range_check<T: Transport>(
    mpc: &mut Session<T>,
    state: &State,
    ds: &Dataset,
    x: Share<Z128>,
) -> Result<()> {
    let max = ds.max_scaled()?;
    let above = x.add_public(state.id, Z128(0) - Z128(max + 1));
    let signs = mpc.msb(&[x, above], 128).await?;
    let opened = unpack(&mpc.open_bits(&signs).await?, 2);
    if opened[0] || !opened[1] {
        bail!(
            "the shared value is {} (the dataset allows 0 to {})",
            if opened[0] {
                "negative"
            } else {
                "above the maximum"
            },
            ds.max
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::local::local_transports;
    use crate::engine::{framed, Counters};

    /// The agreement rounds count in the transport's counters, which the MPC session started
    /// on it then reports: its seed round adds to them.
    #[tokio::test]
    async fn agreement_rounds_count_in_the_session_counters() {
        let x = [11u128, 22, 33];
        let contribution: Id = [5; 16];
        let mut tasks = Vec::new();
        for mut t in local_transports() {
            tasks.push(tokio::spawn(async move {
                let me = t.id();
                let sub = Submission::Plain {
                    a: x[me],
                    b: x[(me + 1) % 3],
                };
                agree(&mut t, me, &contribution, &sub, &Ok(None)).await?;
                let after_agree = t.counters();
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(me as u64);
                let mpc = Session::start(me, t, &mut rng).await?;
                anyhow::Ok((after_agree, mpc.counters()))
            }));
        }
        // A 32-byte hash to the next party, then a verdict byte to both neighbours; the
        // session adds its seed round (a 32-byte seed and a mode byte to the previous party).
        let hash = framed(32);
        let verdicts = 2 * framed(1);
        for t in tasks {
            let (agreed, session) = t.await.unwrap().unwrap();
            assert_eq!(
                agreed,
                Counters {
                    rounds: 2,
                    bytes_sent: hash + verdicts,
                    bytes_received: hash + verdicts,
                }
            );
            assert_eq!(
                session,
                Counters {
                    rounds: 3,
                    bytes_sent: hash + verdicts + framed(33),
                    bytes_received: hash + verdicts + framed(33),
                }
            );
        }
    }
}
