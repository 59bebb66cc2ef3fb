//! The coordinator's side of one query: the closed epoch it runs over, the queue slot, the
//! delivery of every decision before it, one session at a time per release, and the
//! parties' outcome. Sees no result: the shares go from the parties to the consumer.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use quinn::SendStream;
use tracing::{info, warn};

use super::contribute::deliver_decisions;
use super::{random_bytes, refuse, wait_for_slot, Req, State};
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::stats::Query;
use crate::wire::TicketHash;
use crate::wire::{short, Control, ControlReply, FromCoordinator, Id, QuerySpec};

/// The lock under which the parties answer one release: identical queries over the same
/// epoch run one after another, so the second finds the release every party kept.
///
/// Run at once, a party that finished the first session could serve the kept answer while
/// a slower one computed a fresh sharing of it, and the consumer would get pairs that
/// contradict each other (the load bench saw exactly that with four consumers asking for
/// a mean the moment its epoch closed). The consumer rejects such an answer, so this is
/// about availability; a coordinator that skipped the lock makes queries fail, never wrong.
fn release_lock(
    state: &State,
    dataset: &str,
    epoch: u64,
    query: &Query,
) -> Arc<tokio::sync::Mutex<()>> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(dataset.as_bytes());
    h.update([0]);
    h.update(epoch.to_le_bytes());
    h.update(query.key());
    let key: [u8; 32] = h.finalize().into();
    let mut locks = state.releases.lock().unwrap_or_else(|p| p.into_inner());
    // Forget the locks nobody holds or waits for.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(key).or_default().clone()
}

pub(super) async fn on_query(
    state: &Arc<State>,
    req: Req,
    spec: QuerySpec,
    result_hash: TicketHash,
    mut send: SendStream,
) -> Result<()> {
    let ds = match state.cluster.dataset(&spec.dataset) {
        Ok(d) => d,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    let query = match Query::new(&spec, ds) {
        Ok(q) => q,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    let committed = state.store.count(&ds.name)?;
    // Queries run over the newest closed epoch only, never over the latest contributions.
    let epoch = ds.closed_epoch(committed);
    if epoch == 0 {
        return refuse(
            &mut send,
            req,
            format!(
                "dataset {} has {committed} contributions; its first release needs {} (epoch_size, \
                 at least min_cohort = {}), so that no answer reveals a single value",
                ds.name,
                ds.epoch_size(),
                ds.min_cohort
            ),
        )
        .await;
    }
    let count = match ds.epoch_end(epoch) {
        Ok(c) => c,
        Err(e) => return refuse(&mut send, req, format!("{e:#}")).await,
    };
    // With a filter the parties check the matching count; without one it is `count`.
    if query.filter.is_none() || count < query.min_count() {
        if let Err(e) = query.check_count(count) {
            return refuse(&mut send, req, format!("{e:#}")).await;
        }
    }
    let Some(_slot) = wait_for_slot(state, &state.queries, req, &mut send).await? else {
        return Ok(());
    };
    let _session = state.drain.session();
    // Every party must hold every commit up to the snapshot before computing over it.
    for p in 0..3 {
        if let Err(e) = deliver_decisions(state, p).await {
            return refuse(&mut send, req, format!("{e:#}; try again later")).await;
        }
    }
    let release = release_lock(state, &ds.name, epoch, &query);
    let _computing = release.lock().await;
    let session: Id = random_bytes();
    let run = Control::RunQuery {
        session,
        spec: spec.clone(),
        epoch,
        ticket_hash: result_hash,
    };
    let started = Instant::now();
    let calls = futures::future::join_all(state.parties.iter().map(|p| p.call(&run))).await;
    let mut streams = Vec::new();
    for (i, c) in calls.into_iter().enumerate() {
        match c {
            Ok((s, r, ControlReply::Accepted)) => streams.push((s, r)),
            Ok((_, _, other)) => {
                return refuse(
                    &mut send,
                    req,
                    format!("party {i} cannot run the query: {other:?}"),
                )
                .await
            }
            Err(e) => return refuse(&mut send, req, format!("{e:#}; try again later")).await,
        }
    }
    send_msg(
        &mut send,
        &FromCoordinator::QueryStarted {
            session,
            count,
            epoch,
        },
    )
    .await?;
    let _ = send.finish();
    let outcomes = futures::future::join_all(streams.into_iter().map(|(_s, mut r)| async move {
        recv_msg::<_, ControlReply>(&mut r, MAX_CONTROL_FRAME).await
    }));
    // The parties compute and answer the consumer by themselves: a stopping coordinator
    // only stops waiting for their word.
    let outcomes = tokio::select! {
        o = outcomes => o,
        _ = state.drain.aborted() => {
            info!(
                request = req.kind,
                peer = %req.ip,
                outcome = "admitted",
                session = %short(&session),
                "query left to the parties: the coordinator shut down"
            );
            return Ok(());
        }
    };
    let failed: Vec<String> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            Ok(ControlReply::QueryDone) => None,
            Ok(other) => Some(format!("party {i}: {other:?}")),
            Err(e) => Some(format!("party {i}: {e}")),
        })
        .collect();
    let ms = (started.elapsed().as_secs_f64() * 1e3).round() as u64;
    if failed.is_empty() {
        info!(
            request = req.kind,
            peer = %req.ip,
            outcome = "admitted",
            session = %short(&session),
            stat = query.stat.name(),
            dataset = %ds.name,
            epoch,
            count,
            ms,
            "query answered"
        );
    } else {
        warn!(
            request = req.kind,
            peer = %req.ip,
            outcome = "failed",
            session = %short(&session),
            reason = %failed.join("; "),
            "query failed"
        );
    }
    Ok(())
}
