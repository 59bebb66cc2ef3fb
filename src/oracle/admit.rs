//! The public checks of a proven contribution, made by the coordinator (before it hands out a
//! ticket) and again by every party (before any MPC): the notary's signature and key, the
//! server name and port against the dataset's template, the attestation's age, and that the records
//! the provider submits are exactly the attested ones. Single use is enforced by the callers'
//! stores, keyed by [`attestation_id`].

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::attestation::{Attestation, AttestedRecord, Direction, SignedAttestation};
use super::template::Template;

/// Tolerated clock difference between the notary and a checker, seconds.
pub const CLOCK_SKEW: u64 = 60;

/// The identity of an attestation for single-use checks: SHA-256 of its signed body.
pub fn attestation_id(a: &SignedAttestation) -> [u8; 32] {
    Sha256::digest(&a.body).into()
}

/// Verifies the attestation against the notary key, the template and the clock.
pub fn check_attestation(
    signed: &SignedAttestation,
    notary_key: &[u8; 32],
    template: &Template,
    now: u64,
) -> Result<Attestation> {
    let a = signed
        .verify(notary_key)
        .context("the attestation is not signed by this cluster's notary")?;
    if a.server_name != template.server_name {
        bail!(
            "the attestation is for {:?}, the dataset's template names {:?}",
            a.server_name,
            template.server_name
        );
    }
    if a.port != template.port {
        bail!(
            "the attestation is for port {}, the dataset's template names port {}",
            a.port,
            template.port
        );
    }
    if a.time > now + CLOCK_SKEW {
        bail!("the attestation is dated {} s in the future", a.time - now);
    }
    let age = now.saturating_sub(a.time);
    if age > template.max_age_secs {
        bail!(
            "the attestation is {age} s old; the dataset accepts at most {} s",
            template.max_age_secs
        );
    }
    Ok(a)
}

/// Checks that `client` and `server` are exactly the attested records, in order.
pub fn check_records(a: &Attestation, client: &[Vec<u8>], server: &[Vec<u8>]) -> Result<()> {
    for (direction, records) in [
        (Direction::ClientToServer, client),
        (Direction::ServerToClient, server),
    ] {
        let attested: Vec<&AttestedRecord> = a.records_of(direction).collect();
        if attested.len() != records.len() {
            bail!(
                "{direction:?}: {} records attested, {} submitted",
                attested.len(),
                records.len()
            );
        }
        for (seq, (want, record)) in attested.iter().zip(records).enumerate() {
            if **want != AttestedRecord::of(direction, seq as u64, record) {
                bail!("{direction:?} record {seq} is not the attested one");
            }
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
