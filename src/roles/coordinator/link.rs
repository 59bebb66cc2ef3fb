//! The coordinator's control link to one party: one QUIC connection, redialled when the
//! party restarted, opened with the cluster-fingerprint Hello; every request bounded by
//! the party timeout. Carries control messages only, never a share.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use quinn::{Connection, Endpoint, RecvStream, SendStream};

use super::PARTY_TIMEOUT;
use crate::net::endpoint::connect;
use crate::net::identity::Identity;
use crate::roles::client::call;
use crate::wire::{Control, ControlReply};

/// The coordinator's connection to one party, redialled when it is gone.
pub(super) struct PartyLink {
    pub(super) id: usize,
    pub(super) addr: SocketAddr,
    pub(super) pin: crate::net::pin::Pin,
    pub(super) endpoint: Endpoint,
    pub(super) identity: Arc<Identity>,
    pub(super) conn: tokio::sync::Mutex<Option<Connection>>,
    /// The coordinator's cluster fingerprint, shown to the party on every new connection.
    pub(super) fingerprint: crate::fingerprint::Fingerprint,
    /// The party's fingerprint and version as it last answered (for `status`).
    pub(super) seen: Mutex<Option<(crate::fingerprint::Fingerprint, String)>>,
}

impl PartyLink {
    pub(super) async fn connection(&self) -> Result<Connection> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.close_reason().is_none() {
                return Ok(c.clone());
            }
        }
        let c = tokio::time::timeout(
            PARTY_TIMEOUT,
            connect(&self.endpoint, self.addr, self.pin, Some(&self.identity)),
        )
        .await
        .map_err(|_| anyhow!("no answer within {} s", PARTY_TIMEOUT.as_secs()))??;
        self.hello(&c).await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Shows the party our cluster fingerprint and checks its own: a party whose cluster
    /// file differs gets no control request (and refuses them anyway).
    pub(super) async fn hello(&self, c: &Connection) -> Result<()> {
        use crate::fingerprint::show;
        let msg = Control::Hello {
            fingerprint: self.fingerprint,
        };
        let (theirs, version) = match call(c, &msg).await?.2 {
            ControlReply::Hello {
                fingerprint,
                version,
            } => (fingerprint, version),
            other => bail!("party {}: unexpected answer to Hello: {other:?}", self.id),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some((theirs, version));
        if theirs != self.fingerprint {
            c.close(1u32.into(), b"cluster fingerprint mismatch");
            bail!(
                "cluster fingerprint check failed: party {} runs cluster {}, the coordinator \
                 runs {}; their cluster.toml files differ",
                self.id,
                show(&theirs),
                show(&self.fingerprint)
            );
        }
        Ok(())
    }

    /// Sends one control request; returns the streams and the first reply. A request that
    /// failed because the connection turned out dead (the party restarted) is sent once more
    /// on a fresh connection; every control request is idempotent.
    pub(super) async fn call(
        &self,
        msg: &Control,
    ) -> Result<(SendStream, RecvStream, ControlReply)> {
        let r = tokio::time::timeout(PARTY_TIMEOUT, async {
            let conn = self.connection().await?;
            match call(&conn, msg).await {
                Err(_) if conn.close_reason().is_some() => {
                    let conn = self.connection().await?;
                    call(&conn, msg).await
                }
                r => r,
            }
        })
        .await
        .map_err(|_| anyhow!("no answer within {} s", PARTY_TIMEOUT.as_secs()))
        .and_then(|r| r);
        r.with_context(|| format!("party {} at {} is unreachable", self.id, self.addr))
    }

    /// A request with a single `Ack`-style answer.
    pub(super) async fn simple(&self, msg: &Control) -> Result<ControlReply> {
        let (_s, _r, reply) = self.call(msg).await?;
        match reply {
            ControlReply::Failed { reason } => bail!("party {} failed: {reason}", self.id),
            other => Ok(other),
        }
    }
}
