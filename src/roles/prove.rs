//! `mpcstats prove`: a data provider runs one HTTPS GET through the cluster's notary and
//! writes a private proof file (DESIGN.md §4).
//!
//! Steps: check the URL against the dataset's template (before any network traffic); dial
//! the notary (pinned) and ask it to connect to the server; run the rustls client (TLS 1.3,
//! TLS13_AES_128_GCM_SHA256 only, the server verified against `--extra-root`) through the
//! tunnel, recording both directions; send `GET` with the template's request line and Host,
//! the caller's headers and `Connection: close`; read the response to close_notify; reveal
//! the server handshake traffic secret; check the notary's signed attestation against the
//! cluster's notary key and against the session as the prover saw it; find the value and the
//! account id with the template; return the [`Proof`]. The application traffic keys stay
//! with the prover (they go into the proof, which is written with mode 0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use quinn::{RecvStream, SendStream};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::notary::{load_roots, unix_now, FromNotary, ToNotary};
use crate::config::{Cluster, ProofPolicy};
use crate::net::endpoint::{client_endpoint, connect};
use crate::net::frame::{recv_msg, send_msg, MAX_CONTROL_FRAME};
use crate::net::pin::pin_from_hex;
use crate::oracle::attestation::{Attestation, Direction};
use crate::oracle::handshake::{self, roots_from_pem, HandshakeCheck, Side};
use crate::oracle::proof::{decrypt_application_data, Proof};
use crate::oracle::prover::{client_config, RecordingStream, SecretCapture};
use crate::oracle::template::Template;
use crate::oracle::tls13::TrafficKeys;

/// Bound on the prover's recording of both directions together.
const RECORD_LIMIT: usize = 2 << 20;
/// Bound on dialing the notary and on each of its answers but the attestation.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the HTTPS exchange itself.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example (the local exchange of the demo; the API key header stays private):
  mpcstats prove --cluster deploy/cluster.toml --dataset exchange_eth \\
      --url https://api.exchange.test/api/v1/account --header 'X-API-KEY: key-3' \\
      --extra-root exchange-ca.pem --out proof.bin
Credentials are best kept out of the process list: --header-file key.txt reads the
headers from a file instead. The URL's host and path must be those of the dataset's template. The proof file holds keys
that decrypt your request: it is written with mode 0600; pass it to `mpcstats share`.")]
pub struct Args {
    /// The HTTPS URL, https://HOST/PATH or https://HOST:PORT/PATH
    #[arg(long)]
    pub url: String,
    /// An extra request header "Name: value" (repeatable; stays hidden from everyone, but
    /// visible in this machine's process list: prefer --header-file for credentials)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Read extra request headers from this file, one "Name: value" per line
    #[arg(long = "header-file", value_name = "FILE")]
    pub header_file: Option<PathBuf>,
    /// The dataset the value is for (its template names the server, path and field)
    #[arg(long)]
    pub dataset: String,
    /// Where to write the proof file (mode 0600)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Trust the CA certificates of this PEM bundle for the server (repeatable)
    #[arg(long = "extra-root", value_name = "PEM")]
    pub extra_roots: Vec<PathBuf>,
}

pub async fn run(cluster_flag: Option<&Path>, args: Args) -> Result<()> {
    let file = Cluster::locate(cluster_flag);
    let cluster = Cluster::load(&file)?;
    let mut roots = Vec::new();
    for p in &args.extra_roots {
        roots.push(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    // Check the files parse before any traffic.
    load_roots(&args.extra_roots)?;
    let mut headers = args.headers.clone();
    if let Some(path) = &args.header_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the header file {}", path.display()))?;
        headers.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    let progress = |msg: &str| eprintln!("prove: {msg}");
    let (proof, summary) = prove_inner(
        &cluster,
        &args.dataset,
        &args.url,
        &headers,
        &roots,
        &progress,
    )
    .await?;
    proof
        .write(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "prove: wrote {} (mode 0600): account {}, value {} for dataset {}",
        args.out.display(),
        summary.account,
        summary.value,
        args.dataset
    );
    Ok(())
}

/// What the prover found, for its own messages.
struct Found {
    account: String,
    value: String,
}

/// Runs one proven HTTPS GET of `url` through the cluster's notary for `dataset` and returns
/// the proof. `headers` are extra request headers ("Name: value"), `extra_roots` PEM bundles
/// the prover trusts for the server.
pub async fn prove(
    cluster: &Cluster,
    dataset: &str,
    url: &str,
    headers: &[String],
    extra_roots: &[Vec<u8>],
) -> Result<Proof> {
    let quiet = |_: &str| {};
    Ok(
        prove_inner(cluster, dataset, url, headers, extra_roots, &quiet)
            .await?
            .0,
    )
}

/// A parsed `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Lower-case host name.
    pub host: String,
    pub port: u16,
    /// Path (with query), starting with `/`.
    pub path: String,
}

/// Parses `https://HOST[:PORT]/PATH`; host names only (no IP literals, no user info).
pub fn parse_url(url: &str) -> Result<HttpsUrl> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("{url:?}: expected an https:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains(['@', '[', ']', '?', '#']) {
        bail!("{url:?}: expected https://HOST[:PORT]/PATH with a DNS host name");
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .with_context(|| format!("{url:?}: bad port {p:?}"))?,
        ),
        None => (authority, 443),
    };
    let host = host.to_ascii_lowercase();
    if !matches!(
        ServerName::try_from(host.as_str()),
        Ok(ServerName::DnsName(_))
    ) {
        bail!("{url:?}: {host:?} is not a DNS host name");
    }
    if path.contains('#') || path.bytes().any(|c| c <= b' ' || c >= 0x7f) {
        bail!("{url:?}: the path must hold no fragment, spaces or control characters");
    }
    Ok(HttpsUrl {
        host,
        port,
        path: path.to_string(),
    })
}

/// The request: the template's request line and Host, the extra headers, `Connection: close`.
pub fn build_request(template: &Template, headers: &[String]) -> Result<Vec<u8>> {
    let mut request = template.request_prefix();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header {h:?}: expected \"Name: value\""))?;
        let name = name.trim();
        let value = value.trim_matches([' ', '\t']);
        let tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
        if name.is_empty() || !name.bytes().all(tchar) {
            bail!("header {h:?}: bad header name");
        }
        if value
            .bytes()
            .any(|c| c != b'\t' && !(b' '..0x7f).contains(&c))
        {
            bail!("header {name}: control or non-ASCII characters in the value");
        }
        for reserved in ["host", "connection", "content-length", "transfer-encoding"] {
            if name.eq_ignore_ascii_case(reserved) {
                bail!("header {name}: set by the prover, cannot be given");
            }
        }
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    debug_assert!(request.starts_with(&template.request_prefix()));
    Ok(request)
}

async fn step<T, F: std::future::Future<Output = Result<T>>>(what: &str, f: F) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("{what}: timed out after {STEP_TIMEOUT:?}"))?
}

async fn answer(recv: &mut RecvStream, what: &str) -> Result<FromNotary> {
    step(what, async {
        recv_msg(recv, MAX_CONTROL_FRAME)
            .await
            .with_context(|| format!("reading the notary's answer to {what}"))
    })
    .await
}

async fn prove_inner(
    cluster: &Cluster,
    dataset: &str,
    url: &str,
    headers: &[String],
    extra_roots: &[Vec<u8>],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Proof, Found)> {
    // Everything checkable is checked before any traffic.
    let d = cluster.dataset(dataset)?;
    if d.proof != ProofPolicy::Tls {
        bail!("dataset {dataset} takes unproven values (proof policy none): nothing to prove");
    }
    let template = d
        .template
        .as_ref()
        .with_context(|| format!("dataset {dataset} has no template"))?;
    let target = parse_url(url)?;
    if target.host != template.server_name {
        bail!(
            "the URL's host {} is not the template's server {} (dataset {dataset})",
            target.host,
            template.server_name
        );
    }
    if target.path != template.path {
        bail!(
            "the URL's path {} is not the template's path {} (dataset {dataset})",
            target.path,
            template.path
        );
    }
    let request = build_request(template, headers)?;
    let notary_key = cluster.notary_key()?;
    let notary_pin = pin_from_hex(&cluster.notary.pin)?;
    let mut bundle = Vec::new();
    for r in extra_roots {
        bundle.extend_from_slice(r);
        bundle.push(b'\n');
    }
    if bundle.iter().all(u8::is_ascii_whitespace) {
        bail!("no trusted roots for the server: pass --extra-root PEM (e.g. the system CA bundle)");
    }
    let roots = roots_from_pem(&bundle).context("the extra roots")?;

    // The notary.
    progress(&format!("dialing the notary at {}", cluster.notary.addr));
    let endpoint = client_endpoint()?;
    let conn = step(
        "dialing the notary",
        connect(&endpoint, cluster.notary.addr, notary_pin, None),
    )
    .await?;
    let result = session(
        &conn,
        template,
        &target,
        &request,
        &roots,
        &notary_key,
        progress,
    )
    .await;
    conn.close(0u32.into(), b"done");
    // Let the close reach the notary without making the caller wait out QUIC's draining
    // period (three probe timeouts).
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    });
    result
}

#[allow(clippy::too_many_arguments)]
async fn session(
    conn: &quinn::Connection,
    template: &Template,
    target: &HttpsUrl,
    request: &[u8],
    roots: &rustls::RootCertStore,
    notary_key: &[u8; 32],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Proof, Found)> {
    let (mut send, mut recv) = conn.open_bi().await.context("opening the control stream")?;
    send_msg(
        &mut send,
        &ToNotary::Connect {
            server_name: target.host.clone(),
            port: target.port,
        },
    )
    .await?;
    match answer(&mut recv, "Connect").await? {
        FromNotary::Connected => {}
        FromNotary::Refused(why) => bail!("the notary refused: {why}"),
        other => bail!("the notary answered {other:?} to Connect"),
    }
    progress(&format!(
        "the notary is connected to {}:{}; TLS handshake",
        target.host, target.port
    ));

    let (tunnel_send, tunnel_recv): (SendStream, RecvStream) =
        conn.open_bi().await.context("opening the tunnel stream")?;
    let stream = RecordingStream::new(tokio::io::join(tunnel_recv, tunnel_send), RECORD_LIMIT);
    let capture = SecretCapture::new();
    let config = client_config(roots.clone(), capture.clone())?;
    let name = ServerName::try_from(target.host.clone())?;
    let (response, recording) = tokio::time::timeout(SESSION_TIMEOUT, async {
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .with_context(|| {
                format!(
                    "TLS handshake with {} through the notary failed (the prover requires TLS 1.3 \
                     with TLS13_AES_128_GCM_SHA256 and a certificate for {} chaining to the given roots)",
                    target.host, target.host
                )
            })?;
        tls.write_all(request).await.context("sending the request")?;
        tls.flush().await.context("sending the request")?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await.with_context(|| {
            format!(
                "reading the response of {} (it must end with a TLS close_notify)",
                target.host
            )
        })?;
        // Close our side of the tunnel without a TLS alert (the session is one request and
        // one response), then read whatever the notary still relays until it closes too.
        let (mut inner, _) = tls.into_inner();
        inner.shutdown().await.context("closing the tunnel")?;
        let mut rest = Vec::new();
        inner
            .read_to_end(&mut rest)
            .await
            .context("draining the tunnel")?;
        Ok::<_, anyhow::Error>((response, inner.recording()))
    })
    .await
    .map_err(|_| anyhow!("the HTTPS session took longer than {SESSION_TIMEOUT:?}"))??;
    let secrets = capture.session_secrets()?;
    progress(&format!(
        "received {} bytes of response; asking the notary to attest",
        response.len()
    ));

    send_msg(
        &mut send,
        &ToNotary::Reveal {
            server_handshake_secret: secrets.server_handshake.clone(),
        },
    )
    .await?;
    let signed = match answer(&mut recv, "Reveal").await? {
        FromNotary::Attested(a) => a,
        FromNotary::Refused(why) => bail!("the notary refused to attest: {why}"),
        other => bail!("the notary answered {other:?} to Reveal"),
    };
    let attestation = signed
        .verify(notary_key)
        .context("the notary's attestation does not verify under the cluster's notary key")?;

    // The session as the prover saw it must be exactly what the notary attested.
    let summary = handshake::verify(&HandshakeCheck {
        client_to_server: &recording.client_to_server,
        server_to_client: &recording.server_to_client,
        server_handshake_secret: &secrets.server_handshake,
        server_name: &target.host,
        now: unix_now(),
        roots,
    })
    .map_err(|e| anyhow!("the recorded session does not verify on the prover's side: {e}"))?;
    let expected =
        Attestation::from_handshake(&summary, attestation.notary_key_id, attestation.time);
    if expected != attestation {
        bail!("the notary attested a session other than the one the prover saw");
    }
    if attestation.server_name != template.server_name {
        bail!(
            "the attestation names {}, the template {}",
            attestation.server_name,
            template.server_name
        );
    }
    let records = |side| -> Vec<Vec<u8>> {
        summary
            .application_records(side)
            .iter()
            .map(|r| r.to_bytes())
            .collect()
    };
    let client_records = records(Side::Client);
    let server_records = records(Side::Server);
    let client_keys = TrafficKeys::derive(&secrets.client_application)?;
    let server_keys = TrafficKeys::derive(&secrets.server_application)?;
    let sent = decrypt_application_data(Direction::ClientToServer, &client_keys, &client_records)?;
    if sent != request {
        bail!("the recorded request differs from the one sent");
    }
    let received =
        decrypt_application_data(Direction::ServerToClient, &server_keys, &server_records)?;
    if received != response {
        bail!("the recorded response differs from the one read");
    }
    let declaration = template
        .locate(&received)
        .context("the response does not fit the dataset's template")?;
    let proof = Proof {
        attestation: signed,
        client_records,
        server_records,
        client_keys,
        server_keys,
        declaration,
    };
    proof.check_records(&attestation)?;
    let value = declaration.value.within("value", received.len())?;
    let account = declaration.account.within("account", received.len())?;
    let found = Found {
        value: String::from_utf8_lossy(&received[value]).into_owned(),
        account: String::from_utf8_lossy(&received[account]).into_owned(),
    };
    progress(&format!(
        "attested by the notary; {} application records",
        attestation.records.len()
    ));
    Ok((proof, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://API.exchange.test/api/v1/account").unwrap();
        assert_eq!(
            u,
            HttpsUrl {
                host: "api.exchange.test".into(),
                port: 443,
                path: "/api/v1/account".into()
            }
        );
        let u = parse_url("https://x.test:8443").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8443, "/"));
        for bad in [
            "http://x.test/",
            "https://user@x.test/",
            "https://x.test:0/",
            "https://x.test:99999/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://x.test/a b",
            "https://x.test/a#f",
            "https:///a",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests() {
        let t = crate::roles::init::exchange_dataset().template.unwrap();
        let r = build_request(&t, &["X-API-KEY: key-3".into()]).unwrap();
        assert!(r.starts_with(&t.request_prefix()));
        assert_eq!(
            r,
            b"GET /api/v1/account HTTP/1.1\r\nHost: api.exchange.test\r\nX-API-KEY: key-3\r\nConnection: close\r\n\r\n"
        );
        for bad in [
            "X-API-KEY",
            "Host: evil",
            "connection: keep-alive",
            "X: a\r\nGET / HTTP/1.1",
            "Bad Name: x",
            ": x",
        ] {
            assert!(build_request(&t, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
