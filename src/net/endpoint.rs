//! QUIC endpoints: the server and client configurations every role uses, built from an
//! [`Identity`] and certificate [`Pin`]s, and the peer pin of an established connection.
//!
//! TLS 1.3 only, ALPN [`ALPN`], one explicit rustls `CryptoProvider` (ring) passed into every
//! config builder, so nothing depends on a process-wide default provider. The transport
//! parameters are sized for bulk MPC traffic on fast links and notice a dead peer within
//! about ten seconds. What a connected peer may do is decided by the caller from its pin.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::identity::Identity;
use super::pin::{pin_of, short_pin, Pin, PinnedClientVerifier, PinnedServerVerifier};

/// The application protocol every mpcstats connection negotiates.
pub const ALPN: &[u8] = b"mpcstats/1";

/// The TLS server name clients send; certificates are pinned, so it is never checked.
pub const SERVER_NAME: &str = "mpcstats";

/// Per-stream receive window: 16 MiB.
pub const STREAM_WINDOW: u32 = 16 << 20;
/// Per-connection receive and send windows: 64 MiB.
pub const CONNECTION_WINDOW: u32 = 64 << 20;
/// Keep-alive ping interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A connection silent for this long is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest UDP payload MTU discovery tries.
pub const MTU_UPPER_BOUND: u16 = 1452;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The transport parameters of every connection: large flow-control windows for bulk MPC
/// rounds, 2 s keep-alive, 10 s idle timeout, and quinn's MTU discovery up to its default
/// bound of 1,452 bytes of UDP payload (a larger bound made no measurable difference even
/// on loopback, whose MTU is 64 KiB: `cargo bench --bench mpc -- shuffle`).
pub fn transport_config() -> TransportConfig {
    let mut t = TransportConfig::default();
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND);
    t.mtu_discovery_config(Some(mtu));
    t.stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        .send_window(u64::from(CONNECTION_WINDOW))
        .max_concurrent_bidi_streams(VarInt::from_u32(256))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(
            IDLE_TIMEOUT.as_millis() as u32,
        ))));
    t
}

fn server_config(
    id: &Identity,
    allowed_client_pins: Vec<Pin>,
) -> anyhow::Result<quinn::ServerConfig> {
    let provider = provider();
    let verifier = PinnedClientVerifier::new(allowed_client_pins, &provider);
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("configuring TLS 1.3")?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![id.cert_der.clone()],
            PrivateKeyDer::Pkcs8(id.key_der.clone_key()),
        )
        .context("the server identity's key does not fit its certificate")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let quic = QuicServerConfig::try_from(tls).context("building the QUIC server config")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The client config for dialing the server pinned as `server_pin`, presenting `client_id`'s
/// certificate if given.
pub fn client_config(
    server_pin: Pin,
    client_id: Option<&Identity>,
) -> anyhow::Result<quinn::ClientConfig> {
    let provider = provider();
    let verifier = PinnedServerVerifier::new(server_pin, &provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("configuring TLS 1.3")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut tls = match client_id {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.cert_der.clone()],
                PrivateKeyDer::Pkcs8(id.key_der.clone_key()),
            )
            .context("the client identity's key does not fit its certificate")?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls).context("building the QUIC client config")?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// An endpoint bound to `bind` that serves with `id`'s certificate, admits clients presenting
/// a certificate pinned in `allowed_client_pins` (or none at all: check [`peer_pin`]), and can
/// dial out with [`connect`].
pub fn server_endpoint(
    bind: SocketAddr,
    id: &Identity,
    allowed_client_pins: Vec<Pin>,
) -> anyhow::Result<quinn::Endpoint> {
    let config = server_config(id, allowed_client_pins)?;
    let socket = bind_udp(bind).with_context(|| format!("binding QUIC endpoint on {bind}"))?;
    let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
    quinn::Endpoint::new(endpoint_config(id), Some(config), socket, runtime)
        .with_context(|| format!("binding QUIC endpoint on {bind}"))
}

/// The kernel buffer each endpoint asks for, in each direction: 8 MiB.
pub const SOCKET_BUFFER: usize = 8 << 20;

/// A UDP socket bound to `bind` with [`SOCKET_BUFFER`]-sized kernel buffers.
///
/// An MPC round is one burst of megabytes towards each neighbour. With the kernel's default
/// receive buffer (208 KiB on Linux) a busy receiver drops datagrams of the burst, and QUIC
/// then waits for loss detection and retransmits: on loopback with three parties on two
/// cores, one round of 10^6 products saw up to 2.4× its bytes on the wire. The kernel caps
/// the size at `net.core.rmem_max` / `wmem_max`; a smaller grant is logged, not an error.
fn bind_udp(bind: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    if bind.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    // Best effort: a refused size leaves the default, which still works, only slower.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    if let Ok(got) = socket.recv_buffer_size() {
        // Linux reports twice the granted size (the doubling covers its bookkeeping).
        if got < SOCKET_BUFFER {
            tracing::debug!(
                "UDP receive buffer on {bind}: {} KiB granted of {} KiB asked (raise net.core.rmem_max for bulk rounds)",
                got >> 10,
                SOCKET_BUFFER >> 10
            );
        }
    }
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

/// Endpoint settings with a stateless-reset key derived from the identity's private key.
///
/// A restarted server then answers packets of its previous life's connections with a valid
/// stateless reset, so peers that dialled it (the mesh, the coordinator) notice the restart
/// at their next keep-alive instead of after the idle timeout, and redial at once.
fn endpoint_config(id: &Identity) -> quinn::EndpointConfig {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"mpcstats/stateless-reset/v1");
    h.update(id.key_der.secret_pkcs8_der());
    let secret = h.finalize();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mut config = quinn::EndpointConfig::new(Arc::new(key));
    // The connection-id generator must also survive a restart: the restarted endpoint only
    // answers packets whose connection id it recognises as one of its own.
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&secret[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

/// A dial-only endpoint on an ephemeral port of all IPv4 interfaces.
pub fn client_endpoint() -> anyhow::Result<quinn::Endpoint> {
    let bind = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    quinn::Endpoint::client(bind).context("binding a QUIC client endpoint")
}

/// Dials the server at `addr`, accepting only the certificate pinned as `server_pin`, and
/// presenting `client_id`'s certificate if given.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    server_pin: Pin,
    client_id: Option<&Identity>,
) -> anyhow::Result<quinn::Connection> {
    let config = client_config(server_pin, client_id)?;
    let connecting = endpoint
        .connect_with(config, addr, SERVER_NAME)
        .with_context(|| format!("dialing {addr}"))?;
    let conn = connecting.await.map_err(|e| {
        anyhow!(e).context(format!(
            "QUIC handshake with {addr} (expected server pin {}) failed",
            short_pin(&server_pin)
        ))
    })?;
    Ok(conn)
}

/// The pin of the certificate the peer presented, `None` for an anonymous client.
pub fn peer_pin(conn: &quinn::Connection) -> Option<Pin> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(|c| pin_of(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::{read_frame, write_frame};

    const LOCAL: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

    /// Serves one connection: records the peer pin, echoes one frame.
    async fn serve_one(server: quinn::Endpoint) -> anyhow::Result<Option<Pin>> {
        let incoming = server
            .accept()
            .await
            .ok_or_else(|| anyhow!("endpoint closed"))?;
        let conn = incoming.await?;
        let pin = peer_pin(&conn);
        let (mut send, mut recv) = conn.accept_bi().await?;
        let msg = read_frame(&mut recv, 1024).await?;
        write_frame(&mut send, &msg).await?;
        send.finish()?;
        // Wait for the client to close.
        conn.closed().await;
        Ok(pin)
    }

    async fn exchange(conn: &quinn::Connection) -> anyhow::Result<Vec<u8>> {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, b"ping").await?;
        let reply = read_frame(&mut recv, 1024).await?;
        conn.close(0u32.into(), b"done");
        Ok(reply)
    }

    #[tokio::test]
    async fn pinned_connect_with_and_without_client_cert() {
        let server_id = Identity::generate("server").unwrap();
        let client_id = Identity::generate("client").unwrap();
        let server = server_endpoint(LOCAL, &server_id, vec![client_id.pin()]).unwrap();
        let addr = server.local_addr().unwrap();
        let client = client_endpoint().unwrap();

        // With a client certificate: the server sees its pin.
        let task = tokio::spawn(serve_one(server.clone()));
        let conn = connect(&client, addr, server_id.pin(), Some(&client_id))
            .await
            .unwrap();
        assert_eq!(peer_pin(&conn), Some(server_id.pin()));
        assert_eq!(exchange(&conn).await.unwrap(), b"ping");
        assert_eq!(task.await.unwrap().unwrap(), Some(client_id.pin()));

        // Anonymous: admitted, no pin.
        let task = tokio::spawn(serve_one(server.clone()));
        let conn = connect(&client, addr, server_id.pin(), None).await.unwrap();
        assert_eq!(exchange(&conn).await.unwrap(), b"ping");
        assert_eq!(task.await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn wrong_server_pin_fails() {
        let server_id = Identity::generate("server").unwrap();
        let impostor = Identity::generate("impostor").unwrap();
        let server = server_endpoint(LOCAL, &server_id, vec![]).unwrap();
        let addr = server.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let incoming = server.accept().await.expect("an incoming connection");
            incoming.await.is_ok()
        });
        let client = client_endpoint().unwrap();
        let err = connect(&client, addr, impostor.pin(), None)
            .await
            .expect_err("a wrong server pin must fail");
        let msg = format!("{err:#}");
        assert!(msg.contains("pin mismatch"), "{msg}");
        assert!(msg.contains(&short_pin(&impostor.pin())), "{msg}");
        assert!(msg.contains(&short_pin(&server_id.pin())), "{msg}");
        assert!(
            !accept.await.unwrap(),
            "server must not see an established connection"
        );
    }

    #[tokio::test]
    async fn unknown_client_cert_refused() {
        let server_id = Identity::generate("server").unwrap();
        let allowed = Identity::generate("allowed").unwrap();
        let stranger = Identity::generate("stranger").unwrap();
        let server = server_endpoint(LOCAL, &server_id, vec![allowed.pin()]).unwrap();
        let addr = server.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let incoming = server.accept().await.expect("an incoming connection");
            incoming.await.map(|_| ()).map_err(|e| e.to_string())
        });
        let client = client_endpoint().unwrap();
        // In TLS 1.3 the client may finish its side of the handshake before the server has
        // judged its certificate; then the refusal arrives as a closed connection.
        let client_side = match connect(&client, addr, server_id.pin(), Some(&stranger)).await {
            Err(e) => format!("{e:#}"),
            Ok(conn) => match exchange(&conn).await {
                Err(e) => format!("{e:#}"),
                Ok(_) => panic!("a client with an unknown certificate exchanged data"),
            },
        };
        let server_err = accept
            .await
            .unwrap()
            .expect_err("server must refuse the client");
        assert!(server_err.contains("pin mismatch"), "{server_err}");
        assert!(
            server_err.contains(&short_pin(&stranger.pin())),
            "{server_err}"
        );
        assert!(!client_side.is_empty());
    }
}
