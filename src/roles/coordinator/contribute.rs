//! The coordinator's side of one contribution: the share intent (attestation check, ticket
//! cap, queue slot), the two phases with the parties (`Expect`, then each party's verdict),
//! the durable decision and its delivery through the outbox. Sees no share.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use quinn::{RecvStream, SendStream};
use tracing::{debug, info};

use super::{
    finish, random_bytes, refuse, wait_for_slot, Req, State, PREPARE_TIMEOUT, TICKET_GRACE,
};
use crate::config::ProofPolicy;
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::oracle::admit;
use crate::oracle::attestation::SignedAttestation;
use crate::roles::drain::{self};
use crate::wire::TicketHash;
use crate::wire::{short, Control, ControlReply, FromCoordinator, Id};

pub(super) async fn on_share_intent(
    state: &Arc<State>,
    req: Req,
    dataset: String,
    attestation: Option<SignedAttestation>,
    ticket_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    // The attestation is checked here first, so that forged or stale proofs cost the
    // parties nothing; every party checks it again.
    let attestation_id = match (ds.proof, &attestation, &ds.template) {
        (ProofPolicy::None, None, _) => None,
        (ProofPolicy::None, Some(_), _) => {
            let reason = format!("dataset {dataset} takes unproven values; use share --value");
            return refuse(&mut send, req, reason).await;
        }
        (ProofPolicy::Tls, None, _) | (ProofPolicy::Tls, _, None) => {
            let reason = format!(
                "dataset {dataset} takes proven contributions only: run `mpcstats prove`, then `mpcstats share --proof`"
            );
            return refuse(&mut send, req, reason).await;
        }
        (ProofPolicy::Tls, Some(a), Some(template)) => {
            let checked = state
                .cluster
                .notary_key()
                .and_then(|key| admit::check_attestation(a, &key, template, admit::now()));
            if let Err(e) = checked {
                return refuse(&mut send, req, format!("{e:#}")).await;
            }
            Some(admit::attestation_id(a))
        }
    };
    let Some(_held) = state.tickets.take(req.ip) else {
        let cap = state.cluster.limits.tickets_per_address;
        let reason = format!(
            "this address already holds {cap} undecided contributions (tickets_per_address); \
             finish or let them time out first"
        );
        return refuse(&mut send, req, reason).await;
    };
    let Some(_slot) = wait_for_slot(state, &state.contributions, req, &mut send).await? else {
        return Ok(());
    };
    let contribution: Id = random_bytes();
    // From here until its decision the contribution is in flight: a stop waits for it, then
    // tells it to abort.
    let _session = state.drain.session();
    state.store.begin(&contribution, &dataset)?;
    if let Some(id) = attestation_id {
        if !state.store.use_attestation(&id, &contribution)? {
            let reason = "this attestation was already used";
            state.store.abort(&contribution, reason)?;
            return refuse(&mut send, req, reason).await;
        }
    }
    // Phase 1: every party must be ready for the submission before the provider gets a ticket.
    let expect = Control::Expect {
        contribution,
        dataset: dataset.clone(),
        ticket_hash,
        attestation: attestation_id,
    };
    let calls = futures::future::join_all(state.parties.iter().map(|p| p.call(&expect))).await;
    let mut streams = Vec::new();
    let mut failure = None;
    for (i, c) in calls.into_iter().enumerate() {
        match c {
            Ok((s, r, ControlReply::Accepted)) => streams.push((s, r)),
            Ok((_, _, other)) => {
                failure = Some(format!(
                    "party {i} cannot take contributions now: {other:?}"
                ))
            }
            Err(e) => failure = Some(format!("{e:#}")),
        }
    }
    if let Some(reason) = failure {
        let reason = format!("{reason}; try again later");
        state.store.abort(&contribution, &reason)?;
        // The abort is recorded: the provider hears it at once, and the parties get it now
        // or from the outbox later (a party that stopped answering must not delay this).
        let told = refuse(&mut send, req, reason).await;
        abort_everywhere(state, &contribution).await;
        return told;
    }
    // From here on the provider knows the id and can ask for its outcome whatever happens
    // to this stream; a send that fails does not stop the decision.
    if let Err(e) = send_msg(&mut send, &FromCoordinator::Ticket { contribution }).await {
        debug!(
            "the provider of {} went away before its ticket: {e}",
            short(&contribution)
        );
    }
    // Phase 2: every party must receive the submission within the ticket timeout, then
    // check it within PREPARE_TIMEOUT.
    let ticket_timeout = state.cluster.limits.ticket_timeout() + TICKET_GRACE;
    // The first party to fail decides: the others need not be waited for (a party that
    // stops fails its expected submissions while the others would wait out the ticket).
    let verdicts = futures::future::try_join_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, (_s, mut r))| async move { verdict(i, &mut r, ticket_timeout).await }),
    );
    let failure = tokio::select! {
        v = verdicts => v.err(),
        _ = state.drain.aborted() => Some(format!(
            "the coordinator shut down before the decision (it waited {} s); send the value again",
            drain::DRAIN_TIME.as_secs()
        )),
    };
    if let Some(reason) = failure {
        state.store.abort(&contribution, &reason)?;
        let reason = format!("contribution {} aborted: {reason}", short(&contribution));
        // Recorded: the provider hears it at once, the parties now or from the outbox.
        let told = refuse(&mut send, req, reason).await;
        abort_everywhere(state, &contribution).await;
        return told;
    }
    let seq = state.store.commit(&contribution)?;
    info!(
        request = req.kind,
        peer = %req.ip,
        outcome = "admitted",
        contribution = %short(&contribution),
        dataset = %dataset,
        count = seq,
        "contribution admitted"
    );
    futures::future::join_all((0..3).map(|p| deliver_decisions(state, p))).await;
    let admitted = FromCoordinator::Admitted {
        contribution,
        count: seq,
    };
    if let Err(e) = send_msg(&mut send, &admitted).await {
        debug!(
            "the provider of {} went away before the decision (it can ask for the outcome): {e}",
            short(&contribution)
        );
    }
    finish(&mut send).await;
    Ok(())
}

/// Party `i`'s verdict on a submission, from its `Expect` stream: `Received` within the
/// ticket timeout (or a verdict at once), then `Prepared` within [`PREPARE_TIMEOUT`].
async fn verdict(i: usize, r: &mut RecvStream, ticket_timeout: Duration) -> Result<(), String> {
    let mut received = false;
    loop {
        let bound = if received {
            PREPARE_TIMEOUT
        } else {
            ticket_timeout
        };
        match tokio::time::timeout(bound, recv_msg::<_, ControlReply>(r, MAX_CONTROL_FRAME)).await {
            Ok(Ok(ControlReply::Received)) if !received => received = true,
            Ok(Ok(ControlReply::Prepared)) => return Ok(()),
            Ok(Ok(ControlReply::Failed { reason })) => return Err(format!("party {i}: {reason}")),
            Ok(Ok(other)) => return Err(format!("party {i} answered {other:?}")),
            Ok(Err(e)) => return Err(format!("party {i} is unreachable: {e}")),
            Err(_) if !received => {
                return Err(format!(
                    "party {i} did not receive the submission within {} s (ticket_timeout_secs)",
                    ticket_timeout.saturating_sub(TICKET_GRACE).as_secs()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "party {i} gave no verdict within {} s",
                    PREPARE_TIMEOUT.as_secs()
                ))
            }
        }
    }
}

/// Delivers the abort of `contribution` (queued in the outbox by the store) to every party
/// now; a party that cannot be reached gets it from the background delivery later.
pub(super) async fn abort_everywhere(state: &State, contribution: &Id) {
    for (p, r) in futures::future::join_all((0..3).map(|p| deliver_decisions(state, p)))
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = r {
            debug!("abort of {} at party {p}: {e:#}", short(contribution));
        }
    }
}

/// Delivers every decision (commit or abort) party `p` has not acknowledged yet.
pub(super) async fn deliver_decisions(state: &State, p: usize) -> Result<()> {
    for (contribution, seq) in state.store.outbox(p)? {
        let msg = match seq {
            Some(seq) => Control::Commit { contribution, seq },
            None => Control::Abort { contribution },
        };
        state.parties[p].simple(&msg).await?;
        state.store.delivered(&contribution, p)?;
    }
    Ok(())
}
