//! `mpcstats notary`: the TLS oracle's proxy notary (DESIGN.md §4).
//!
//! A prover connects by QUIC (anonymously; the notary is pinned in `cluster.toml`) and opens
//! one bidirectional **control** stream:
//!
//! 1. prover → [`ToNotary::Connect`] `{ server_name, port }`; the notary resolves the name
//!    itself (or takes its `--resolve` override), dials it by TCP and answers
//!    [`FromNotary::Connected`] or [`FromNotary::Refused`];
//! 2. the prover opens a second bidirectional stream, the **tunnel**: raw TLS bytes both ways.
//!    The notary relays them to and from the TCP connection and records both directions (at
//!    most [`RECORD_LIMIT`] bytes each). The prover finishes its side of the tunnel when its
//!    TLS session is over; the notary finishes its side when the server closes TCP;
//! 3. prover → [`ToNotary::Reveal`] `{ server_handshake_secret }` on the control stream (empty
//!    for TLS 1.2); the notary checks the recorded handshake ([`handshake::verify`]: the
//!    certificate chain against its root store for the name at the current time, then for TLS
//!    1.3 CertificateVerify and Finished under the revealed secret, for TLS 1.2 the
//!    ServerKeyExchange signature) and answers [`FromNotary::Attested`] with its signed
//!    attestation (server, port, TLS version, time, record hashes), or
//!    [`FromNotary::Refused`] naming the failed check.
//!
//! The notary never holds an application traffic key: it sees ciphertext only, and logs only
//! sizes and verdicts.
//!
//! Root store: the Mozilla root program (webpki-roots) by default, plus every `--extra-root`
//! PEM bundle; `--no-default-roots` drops the Mozilla roots (tests and private deployments).
//! By default the notary only dials the server names and ports of the cluster's `tls`
//! datasets (it is not an open proxy); `--any-server` lifts that.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info, warn};

use super::drain::{self, Drain};
use crate::config::{Cluster, ProofPolicy};
use crate::net::endpoint::server_endpoint;
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::identity::Identity;
use crate::net::pin::pin_from_hex;
use crate::oracle::attestation::{Attestation, NotaryKey, SignedAttestation};
use crate::oracle::handshake::{self, roots_from_pem, HandshakeCheck};
use crate::oracle::prover::Recording;

/// Largest recorded session, per direction: 1 MiB.
pub const RECORD_LIMIT: usize = 1 << 20;
/// Bound on resolving and dialing the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the relayed TLS session, from `Connected` to both sides closed.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on waiting for one control message or stream from the prover.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Sessions relayed at once; further provers are refused as busy.
pub const MAX_SESSIONS: usize = 64;
/// Bound on a whole session, from its control stream to the signed attestation: no prover
/// holds one of the [`MAX_SESSIONS`] slots longer, however it paces its messages.
pub const SESSION_BOUND: Duration = Duration::from_secs(90);

/// Prover → notary, on the control stream.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToNotary {
    /// Dial `server_name:port` (a DNS name; the notary resolves it).
    Connect { server_name: String, port: u16 },
    /// The TLS session is over: the server handshake traffic secret (32 bytes).
    Reveal { server_handshake_secret: Vec<u8> },
}

impl std::fmt::Debug for ToNotary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToNotary::Connect { server_name, port } => f
                .debug_struct("Connect")
                .field("server_name", server_name)
                .field("port", port)
                .finish(),
            ToNotary::Reveal { .. } => f.debug_struct("Reveal").finish_non_exhaustive(),
        }
    }
}

/// Notary → prover, on the control stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromNotary {
    /// The TCP connection to the server is up: open the tunnel stream.
    Connected,
    /// The verified session's signed attestation.
    Attested(SignedAttestation),
    /// The session is refused; the reason names the failed check.
    Refused(String),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example (after `mpcstats init --out deploy`, on the notary's host):
  mpcstats notary --cluster deploy/cluster.toml
Key, certificate and attestation key default to notary.key.pem, notary.cert.pem and
notary.attestation.pem beside the cluster file. The notary trusts the Mozilla root program
(built in) and every --extra-root bundle; --no-default-roots keeps only the latter. It only
dials the servers and ports named by the cluster's `tls` datasets unless --any-server is
given. On SIGTERM it refuses new sessions and lets those in flight finish for up to 10 s.

Ports (the notary's QUIC link is UDP; answers return on the same flow):
  notary <- provers (`mpcstats prove`): UDP to the notary's address
  notary -> the datasets' web servers: TCP to their ports (443 for HTTPS)
The notary talks to neither the coordinator nor the parties.")]
pub struct Args {
    /// Address to listen on [default: the notary's address in the cluster file]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// QUIC private key [default: notary.key.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// QUIC certificate [default: notary.cert.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Ed25519 attestation key [default: notary.attestation.pem beside the cluster file]
    #[arg(long, value_name = "FILE")]
    pub attestation_key: Option<PathBuf>,
    /// Dial HOST at ADDR (IP:PORT, or IP to keep the requested port) instead of resolving it
    #[arg(long, value_name = "HOST:ADDR")]
    pub resolve: Vec<String>,
    /// Also trust the CA certificates of this PEM bundle (repeatable)
    #[arg(long = "extra-root", value_name = "PEM")]
    pub extra_roots: Vec<PathBuf>,
    /// Do not trust the Mozilla root program (only --extra-root)
    #[arg(long)]
    pub no_default_roots: bool,
    /// Dial any server name a prover asks for, not only those of the cluster's datasets
    #[arg(long)]
    pub any_server: bool,
}

/// Everything a notary needs to run.
pub struct NotaryOptions {
    /// The attestation signing key.
    pub key: NotaryKey,
    /// Trust anchors for server certificates.
    pub roots: RootCertStore,
    /// Resolve overrides: name → address (port 0: keep the requested port).
    pub resolve: HashMap<String, SocketAddr>,
    /// The servers (name, port) provers may ask for; `None`: any.
    pub allowed_servers: Option<Vec<(String, u16)>>,
    /// Bytes recorded per direction before a session is refused.
    pub record_limit: usize,
    /// Sessions one client address may have at once (`notary_sessions_per_address`).
    pub sessions_per_address: u32,
    /// Receives every relayed session's recording (tests: check what the notary held).
    pub tap: Option<mpsc::UnboundedSender<Recording>>,
}

impl NotaryOptions {
    /// Options with defaults: no overrides, any server, [`RECORD_LIMIT`], no tap.
    pub fn new(key: NotaryKey, roots: RootCertStore) -> NotaryOptions {
        NotaryOptions {
            key,
            roots,
            resolve: HashMap::new(),
            allowed_servers: None,
            record_limit: RECORD_LIMIT,
            sessions_per_address: crate::config::Limits::default().notary_sessions_per_address,
            tap: None,
        }
    }
}

/// Parses a `--resolve` entry `HOST:IP:PORT` or `HOST:IP` (IPv6 as `[addr]:port`).
pub fn parse_resolve(entry: &str) -> Result<(String, SocketAddr)> {
    let (host, addr) = entry
        .split_once(':')
        .with_context(|| format!("--resolve {entry:?}: expected HOST:IP:PORT or HOST:IP"))?;
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        bail!("--resolve {entry:?}: empty host");
    }
    let addr = match addr.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(
            addr.trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .with_context(|| format!("--resolve {entry:?}: {addr:?} is not IP:PORT or IP"))?,
            0,
        ),
    };
    Ok((host, addr))
}

/// Reads and concatenates PEM bundles into one root store.
pub fn load_roots(paths: &[PathBuf]) -> Result<RootCertStore> {
    let mut bundle = Vec::new();
    for p in paths {
        let bytes = crate::files::read_limited(p, crate::files::MAX_ROOTS_FILE, "root bundle")?;
        roots_from_pem(&bytes).with_context(|| format!("{} is not a PEM bundle", p.display()))?;
        bundle.extend_from_slice(&bytes);
        bundle.push(b'\n');
    }
    if bundle.is_empty() {
        return Ok(RootCertStore::empty());
    }
    roots_from_pem(&bundle)
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    info!(
        "notary: cluster fingerprint: {}",
        crate::fingerprint::show(&crate::fingerprint::of(&cluster))
    );
    let cert = args
        .cert
        .unwrap_or_else(|| super::beside(&file, "notary.cert.pem"));
    let key = args
        .key
        .unwrap_or_else(|| super::beside(&file, "notary.key.pem"));
    let identity = Identity::load(&cert, &key)?;
    if identity.pin() != pin_from_hex(&cluster.notary.pin)? {
        bail!(
            "{} is not the notary's certificate in {} (its pin differs)",
            cert.display(),
            file.display()
        );
    }
    let attestation_key = args
        .attestation_key
        .unwrap_or_else(|| super::beside(&file, "notary.attestation.pem"));
    let signing = NotaryKey::load(&attestation_key)?;
    match cluster.notary.attestation_key.as_deref() {
        Some(published) if published != hex::encode(signing.public_key()) => bail!(
            "{} is not the attestation key published in {} (the public keys differ)",
            attestation_key.display(),
            file.display()
        ),
        Some(_) => {}
        None => warn!(
            "{} publishes no notary attestation_key: nobody can check this notary's attestations",
            file.display()
        ),
    }
    let mut roots = if args.no_default_roots {
        RootCertStore::empty()
    } else {
        super::prove::mozilla_roots()
    };
    roots.roots.extend(load_roots(&args.extra_roots)?.roots);
    if roots.is_empty() {
        bail!("no trusted roots: --no-default-roots needs at least one --extra-root PEM bundle");
    }
    let mut resolve = HashMap::new();
    for entry in &args.resolve {
        let (host, addr) = parse_resolve(entry)?;
        resolve.insert(host, addr);
    }
    let allowed_servers = if args.any_server {
        None
    } else {
        let names: Vec<(String, u16)> = cluster
            .datasets
            .iter()
            .filter(|d| d.proof == ProofPolicy::Tls)
            .filter_map(|d| d.template.as_ref())
            .map(|t| (t.server_name.to_ascii_lowercase(), t.port))
            .collect();
        if names.is_empty() {
            warn!("the cluster has no tls dataset: every session will be refused (or pass --any-server)");
        }
        Some(names)
    };
    let listen = args.listen.unwrap_or(cluster.notary.addr);
    let endpoint = server_endpoint(listen, &identity, vec![])
        .with_context(|| format!("the notary cannot listen on {listen}"))?;
    let server = serve(
        NotaryOptions {
            key: signing,
            roots,
            resolve,
            allowed_servers,
            record_limit: RECORD_LIMIT,
            sessions_per_address: cluster.limits.notary_sessions_per_address,
            tap: None,
        },
        endpoint,
    )
    .await?;
    info!("notary listening on {}", server.addr);
    super::shutdown_signal().await;
    info!("notary shutting down");
    server.shutdown().await;
    Ok(())
}

/// A running notary.
pub struct NotaryServer {
    pub addr: SocketAddr,
    endpoint: Endpoint,
    accept: tokio::task::JoinHandle<()>,
    drain: Arc<Drain>,
}

impl NotaryServer {
    /// Stops gracefully (SIGTERM): refuses new sessions, lets those in flight finish for up
    /// to [`drain::DRAIN_TIME`], refuses the rest, then stops.
    pub async fn shutdown(self) {
        let s = self.drain.stop(drain::DRAIN_TIME, drain::ABORT_TIME).await;
        info!(
            in_flight = s.in_flight,
            aborted = s.aborted,
            left = s.left,
            "notary drained"
        );
        self.stop().await;
    }

    /// Closes every connection and stops accepting.
    pub async fn stop(self) {
        self.endpoint.close(0u32.into(), b"notary shutting down");
        self.accept.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

struct State {
    opts: NotaryOptions,
    sessions: Semaphore,
    per_address: Arc<super::admission::Caps>,
    drain: Arc<Drain>,
}

/// Starts the notary on `endpoint` (a [`server_endpoint`] with the notary's identity; clients
/// are anonymous).
pub async fn serve(opts: NotaryOptions, endpoint: Endpoint) -> Result<NotaryServer> {
    let addr = endpoint
        .local_addr()
        .context("the notary endpoint has no address")?;
    let per_address = super::admission::Caps::new(opts.sessions_per_address);
    let drain = Drain::new();
    let state = Arc::new(State {
        opts,
        sessions: Semaphore::new(MAX_SESSIONS),
        per_address,
        drain: drain.clone(),
    });
    let accept = tokio::spawn(accept_loop(endpoint.clone(), state));
    Ok(NotaryServer {
        addr,
        endpoint,
        accept,
        drain,
    })
}

async fn accept_loop(endpoint: Endpoint, state: Arc<State>) {
    while let Some(incoming) = endpoint.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) => on_connection(&state, conn).await,
                Err(e) => debug!("handshake failed: {e}"),
            }
        });
    }
}

async fn on_connection(state: &State, conn: Connection) {
    let peer = conn.remote_address();
    let (mut send, mut recv) = match tokio::time::timeout(MESSAGE_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            debug!("session {peer}: no control stream");
            return;
        }
    };
    let held = state.per_address.take(peer.ip());
    let reply = match (held, state.sessions.try_acquire()) {
        _ if state.drain.closing() => FromNotary::Refused(drain::SHUTTING_DOWN.into()),
        (None, _) => {
            let cap = state.opts.sessions_per_address;
            FromNotary::Refused(format!(
                "this address already has {cap} sessions at the notary \
                 (notary_sessions_per_address); finish them first"
            ))
        }
        (_, Err(_)) => FromNotary::Refused(format!(
            "the notary is busy ({MAX_SESSIONS} sessions running); try again later"
        )),
        (Some(_held), Ok(_permit)) => {
            let _session = state.drain.session();
            let work = session(state, &conn, &mut send, &mut recv, peer);
            tokio::select! {
                r = tokio::time::timeout(SESSION_BOUND, work) => match r {
                    Ok(Ok(signed)) => FromNotary::Attested(signed),
                    Ok(Err(e)) => FromNotary::Refused(format!("{e:#}")),
                    Err(_) => FromNotary::Refused(format!(
                        "the session took longer than {} s",
                        SESSION_BOUND.as_secs()
                    )),
                },
                _ = state.drain.aborted() => {
                    FromNotary::Refused("the notary shut down during the session".into())
                }
            }
        }
    };
    match &reply {
        FromNotary::Refused(reason) => warn!(
            request = "notary_session",
            peer = %peer.ip(),
            outcome = "refused",
            reason = %reason,
            "session refused"
        ),
        _ => info!(
            request = "notary_session",
            peer = %peer.ip(),
            outcome = "admitted",
            "session attested"
        ),
    }
    if send_msg(&mut send, &reply).await.is_ok() {
        let _ = send.finish();
    }
    // Let the reply arrive: the prover closes the connection once it has it.
    let _ = tokio::time::timeout(MESSAGE_TIMEOUT, conn.closed()).await;
}

async fn next_msg(recv: &mut RecvStream, what: &str) -> Result<ToNotary> {
    tokio::time::timeout(MESSAGE_TIMEOUT, recv_msg(recv, MAX_CONTROL_FRAME))
        .await
        .map_err(|_| anyhow!("timed out waiting for {what}"))?
        .with_context(|| format!("reading {what}"))
}

/// One prover session, up to the signed attestation.
async fn session(
    state: &State,
    conn: &Connection,
    send: &mut SendStream,
    recv: &mut RecvStream,
    peer: SocketAddr,
) -> Result<SignedAttestation> {
    let opts = &state.opts;
    let ToNotary::Connect { server_name, port } = next_msg(recv, "Connect").await? else {
        bail!("expected Connect first");
    };
    let name = server_name.to_ascii_lowercase();
    match ServerName::try_from(name.as_str()) {
        Ok(ServerName::DnsName(_)) => {}
        _ => bail!("{server_name:?} is not a DNS name"),
    }
    if port == 0 {
        bail!("port 0");
    }
    if let Some(allowed) = &opts.allowed_servers {
        if !allowed.iter().any(|(n, p)| *n == name && *p == port) {
            bail!("this notary does not dial {name}:{port}: no dataset of its cluster names that server and port");
        }
    }
    let tcp = dial(opts, &name, port).await?;
    let server_addr = tcp.peer_addr().context("the TCP connection has no peer")?;
    send_msg(send, &FromNotary::Connected).await?;
    debug!("session {peer}: connected to {name}:{port} at {server_addr}");

    let (tunnel_send, tunnel_recv) = tokio::time::timeout(MESSAGE_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| anyhow!("timed out waiting for the tunnel stream"))?
        .context("accepting the tunnel stream")?;
    let recording = tokio::time::timeout(
        SESSION_TIMEOUT,
        relay(tcp, tunnel_recv, tunnel_send, opts.record_limit),
    )
    .await
    .map_err(|_| anyhow!("the relayed session took longer than {SESSION_TIMEOUT:?}"))??;
    info!(
        "session {peer}: relayed {name}:{port} ({server_addr}): {} B client→server, {} B server→client",
        recording.client_to_server.len(),
        recording.server_to_client.len()
    );
    if let Some(tap) = &opts.tap {
        let _ = tap.send(recording.clone());
    }

    let ToNotary::Reveal {
        server_handshake_secret,
    } = next_msg(recv, "Reveal").await?
    else {
        bail!("expected Reveal after the session");
    };
    let now = unix_now();
    let summary = handshake::verify(&HandshakeCheck {
        client_to_server: &recording.client_to_server,
        server_to_client: &recording.server_to_client,
        server_handshake_secret: &server_handshake_secret,
        server_name: &name,
        now,
        roots: &opts.roots,
    })
    .map_err(|e| anyhow!("the server handshake of {name} does not verify: {e}"))?;
    let attestation = Attestation::from_handshake(&summary, port, opts.key.key_id(), now);
    let signed = attestation
        .sign(opts.key.key_pair())
        .context("signing the attestation")?;
    info!(
        "session {peer}: attested {name} ({} application records)",
        attestation.records.len()
    );
    Ok(signed)
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Resolves `name` (or takes its override) and dials the first address that answers.
async fn dial(opts: &NotaryOptions, name: &str, port: u16) -> Result<TcpStream> {
    let work = async {
        let addrs: Vec<SocketAddr> = match opts.resolve.get(name) {
            Some(a) if a.port() == 0 => vec![SocketAddr::new(a.ip(), port)],
            Some(a) => vec![*a],
            None => tokio::net::lookup_host((name, port))
                .await
                .with_context(|| format!("cannot resolve {name}"))?
                .collect(),
        };
        let mut last = anyhow!("{name} resolves to no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = anyhow!(e).context(format!("cannot connect to {name} at {addr}")),
            }
        }
        Err(last)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .map_err(|_| anyhow!("connecting to {name}:{port} timed out after {CONNECT_TIMEOUT:?}"))?
}

/// Relays between the prover's tunnel stream and the server until both sides are closed,
/// recording each direction.
async fn relay(
    tcp: TcpStream,
    from_prover: RecvStream,
    to_prover: SendStream,
    limit: usize,
) -> Result<Recording> {
    let (tcp_read, tcp_write) = tcp.into_split();
    let (client_to_server, server_to_client) = tokio::try_join!(
        pump(from_prover, tcp_write, limit, "client→server"),
        pump(tcp_read, to_prover, limit, "server→client"),
    )?;
    Ok(Recording {
        client_to_server,
        server_to_client,
    })
}

/// Copies `from` to `to` until `from` ends, then closes `to`'s write side. Returns the bytes.
async fn pump<R, W>(mut from: R, mut to: W, limit: usize, what: &str) -> Result<Vec<u8>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut recorded = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = from
            .read(&mut buf)
            .await
            .with_context(|| format!("relaying {what}: reading"))?;
        if n == 0 {
            break;
        }
        if recorded.len() + n > limit {
            bail!("relaying {what}: the session exceeds {limit} bytes");
        }
        to.write_all(&buf[..n])
            .await
            .with_context(|| format!("relaying {what}: writing"))?;
        recorded.extend_from_slice(&buf[..n]);
    }
    // The other side may already be gone (a server that closed first): not an error.
    if let Err(e) = to.shutdown().await {
        debug!("relaying {what}: closing: {e}");
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_entries() {
        let (h, a) = parse_resolve("API.exchange.test:127.0.0.1:8443").unwrap();
        assert_eq!(h, "api.exchange.test");
        assert_eq!(a, "127.0.0.1:8443".parse().unwrap());
        let (_, a) = parse_resolve("x.test:10.0.0.1").unwrap();
        assert_eq!(a, "10.0.0.1:0".parse().unwrap());
        let (_, a) = parse_resolve("x.test:[::1]:443").unwrap();
        assert_eq!(a, "[::1]:443".parse().unwrap());
        assert!(parse_resolve("x.test").is_err());
        assert!(parse_resolve("x.test:nothere").is_err());
        assert!(parse_resolve(":1.2.3.4").is_err());
    }

    #[test]
    fn reveal_debug_hides_the_secret() {
        let m = ToNotary::Reveal {
            server_handshake_secret: vec![0xab; 32],
        };
        assert!(!format!("{m:?}").contains("171"));
        assert!(!format!("{m:?}").to_lowercase().contains("ab, "));
    }
}
