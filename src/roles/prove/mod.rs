//! `mpcstats prove`: a data provider runs one HTTPS GET through the cluster's notary and
//! writes a private proof file (DESIGN.md §4).
//!
//! Steps: check the URL against the dataset's template and build the request (query
//! parameters filled in and signed as the template says, [`request`]) before any network
//! traffic; dial the notary (pinned) and ask it to connect to the server on the template's
//! port; run the rustls client through the tunnel (the server verified against the Mozilla
//! roots and `--extra-root`), recording both directions; send the request; read the
//! response until the server closes (with or without close_notify: the response is complete
//! by its own framing); reveal the server handshake traffic secret; check the notary's signed
//! attestation against the cluster's notary key and against the session as the prover saw
//! it; find the value with the template; return the [`Proof`]. The application traffic keys
//! stay with the prover (they go into the proof, which is written with mode 0600).
//!
//! Must not hold: the API key, secret or any header value in an error or a log line.

pub mod request;

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
use crate::oracle::handshake::TlsVersion;
use crate::oracle::handshake::{self, roots_from_pem, HandshakeCheck, Side};
use crate::oracle::proof::{decrypt_session, traffic_keys_of_tls12, Proof};
use crate::oracle::prover::tls12_application_keys;
use crate::oracle::prover::{client_config, RecordingStream, SecretCapture};
use crate::oracle::signing::ApiKey;
use crate::oracle::template::value::MAX_DIGITS_WITH_SCALE;
use crate::oracle::template::Template;
use crate::oracle::tls13::TrafficKeys;
pub use request::{build_request, param_values, parse_url, HttpsUrl};

/// Bound on the prover's recording of both directions together.
const RECORD_LIMIT: usize = 2 << 20;
/// Bound on dialing the notary and on each of its answers but the attestation.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the HTTPS exchange itself.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  # a signed API (Binance-style): key and secret from a 0600 file, timestamp and
  # signature added by prove
  mpcstats prove --dataset binance_eth --key-file binance.toml --out proof.bin \\
      --url 'https://api.binance.com/api/v3/account?omitZeroBalances=true&recvWindow=60000'
  # a bearer token from a file (one \"Name: value\" per line)
  mpcstats prove --dataset followers --header-file token.txt --out proof.bin \\
      --url https://api.profile.example/v1/me
  # the demo's local exchange
  mpcstats prove --dataset exchange_eth --url https://api.exchange.test/api/v1/account \\
      --header 'X-API-KEY: key-3' --extra-root exchange-ca.pem --out proof.bin
The URL's host, port and path must be the dataset template's; its query parameters fill the
template's public and hidden parameters (fixed ones are added when left out). A key file
holds two lines, api_key = \"…\" and api_secret = \"…\", and must have mode 0600. Headers
given with --header are visible in this machine's process list: prefer --header-file or
--key-file for credentials. The proof file holds keys that decrypt your request: it is
written with mode 0600; pass it to `mpcstats share`.")]
pub struct Args {
    /// The HTTPS URL: https://HOST/PATH, with :PORT and ?QUERY where the template has them
    #[arg(long)]
    pub url: String,
    /// The API key and secret for a template that signs requests (TOML, mode 0600)
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
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
    /// Also trust the CA certificates of this PEM bundle for the server (repeatable)
    #[arg(long = "extra-root", value_name = "PEM")]
    pub extra_roots: Vec<PathBuf>,
    /// Do not trust the Mozilla root program (only --extra-root)
    #[arg(long)]
    pub no_default_roots: bool,
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
        let text = crate::oracle::signing::read_private(path, "header file")?;
        headers.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    let key = args.key_file.as_deref().map(ApiKey::load).transpose()?;
    let progress = |msg: &str| eprintln!("prove: {msg}");
    let req = ProveRequest {
        dataset: &args.dataset,
        url: &args.url,
        headers: &headers,
        key: key.as_ref(),
        extra_roots: &roots,
        default_roots: !args.no_default_roots,
    };
    let (proof, summary) = prove_inner(&cluster, &req, &progress).await?;
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

/// What a provider asks `prove` for.
#[derive(Debug, Clone, Copy)]
pub struct ProveRequest<'a> {
    pub dataset: &'a str,
    pub url: &'a str,
    /// Extra request headers ("Name: value"), hidden from everyone.
    pub headers: &'a [String],
    /// The API key for a template that signs requests.
    pub key: Option<&'a ApiKey>,
    /// PEM bundles the prover trusts for the server, beside the Mozilla roots.
    pub extra_roots: &'a [Vec<u8>],
    /// Whether to trust the Mozilla root program.
    pub default_roots: bool,
}

/// Runs one proven HTTPS GET of `url` through the cluster's notary for `dataset` and returns
/// the proof. `headers` are extra request headers ("Name: value"), `extra_roots` PEM bundles
/// the prover trusts for the server (besides the Mozilla roots).
pub async fn prove(
    cluster: &Cluster,
    dataset: &str,
    url: &str,
    headers: &[String],
    extra_roots: &[Vec<u8>],
) -> Result<Proof> {
    let req = ProveRequest {
        dataset,
        url,
        headers,
        key: None,
        extra_roots,
        default_roots: true,
    };
    prove_with(cluster, &req).await
}

/// [`prove`] with every option.
pub async fn prove_with(cluster: &Cluster, req: &ProveRequest<'_>) -> Result<Proof> {
    let quiet = |_: &str| {};
    Ok(prove_inner(cluster, req, &quiet).await?.0)
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
    req: &ProveRequest<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Proof, Found)> {
    let dataset = req.dataset;
    // Everything checkable is checked before any traffic.
    let d = cluster.dataset(dataset)?;
    if d.proof != ProofPolicy::Tls {
        bail!("dataset {dataset} takes unproven values (proof policy none): nothing to prove");
    }
    let template = d
        .template
        .as_ref()
        .with_context(|| format!("dataset {dataset} has no template"))?;
    // The URL may hold parameter values: errors name the check, not the URL.
    let target = parse_url(req.url).context("--url")?;
    if target.host != template.server_name {
        bail!(
            "the URL's host {} is not the template's server {} (dataset {dataset})",
            target.host,
            template.server_name
        );
    }
    if target.port != template.port {
        bail!(
            "the URL's port {} is not the template's port {} (dataset {dataset}); the notary \
             dials the template's port (a test deployment maps it with the notary's --resolve)",
            target.port,
            template.port
        );
    }
    if req.key.is_some() && template.signing.is_none() {
        bail!(
            "dataset {dataset}'s template does not sign requests: drop --key-file (credentials \
             for it go in --header-file)"
        );
    }
    if target.path != template.path {
        bail!(
            "the URL's path {} is not the template's path {} (dataset {dataset})",
            target.path,
            template.path
        );
    }
    let values = param_values(template, &target, req.key, None)?;
    let (request, params) = build_request(template, &values, req.headers, req.key)?;
    let notary_key = cluster.notary_key()?;
    let notary_pin = pin_from_hex(&cluster.notary.pin)?;
    let mut roots = if req.default_roots {
        mozilla_roots()
    } else {
        rustls::RootCertStore::empty()
    };
    for r in req.extra_roots {
        for cert in roots_from_pem(r).context("the extra roots")?.roots {
            roots.roots.push(cert);
        }
    }
    if roots.is_empty() {
        bail!("no trusted roots for the server: drop --no-default-roots or pass --extra-root PEM");
    }

    // The notary.
    progress(&format!("dialing the notary at {}", cluster.notary.addr));
    let endpoint = client_endpoint()?;
    let conn = step(
        "dialing the notary",
        connect(&endpoint, cluster.notary.addr, notary_pin, None),
    )
    .await
    .with_context(|| {
        format!(
            "cannot reach the notary at {}: is it running, and is that its address in the cluster file?",
            cluster.notary.addr
        )
    })?;
    let result = session(
        &conn,
        Target {
            dataset,
            scale: d.scale,
            template,
            url: &target,
            request: &request,
            params,
        },
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

/// The Mozilla root program's trust anchors (webpki-roots).
pub fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// What one session asks for.
struct Target<'a> {
    dataset: &'a str,
    scale: u32,
    template: &'a Template,
    url: &'a HttpsUrl,
    request: &'a [u8],
    params: Vec<u32>,
}

async fn session(
    conn: &quinn::Connection,
    t: Target<'_>,
    roots: &rustls::RootCertStore,
    notary_key: &[u8; 32],
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Proof, Found)> {
    let (template, target, request) = (t.template, t.url, t.request);
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
                     with TLS13_AES_128_GCM_SHA256 or TLS 1.2 with ECDHE and AES-128-GCM and a certificate for {} chaining to the given roots)",
                    target.host, target.host
                )
            })?;
        tls.write_all(request).await.context("sending the request")?;
        tls.flush().await.context("sending the request")?;
        let mut response = Vec::new();
        // A server may close without close_notify: the response is then complete by its
        // own framing (Content-Length or the last chunk), which the template checks.
        match tls.read_to_end(&mut response).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!("reading the response of {}", target.host)))
            }
        }
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
    // TLS 1.2: nothing to reveal (the notary checks the plaintext handshake); TLS 1.3: the
    // server handshake traffic secret.
    let master12 = capture.tls12_master_secret();
    let secrets = match master12 {
        Some(_) => None,
        None => Some(capture.session_secrets()?),
    };
    let revealed = secrets
        .as_ref()
        .map(|s| s.server_handshake.clone())
        .unwrap_or_default();
    progress(&format!(
        "received {} bytes of response; asking the notary to attest",
        response.len()
    ));

    send_msg(
        &mut send,
        &ToNotary::Reveal {
            server_handshake_secret: revealed.clone(),
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
        server_handshake_secret: &revealed,
        server_name: &target.host,
        now: unix_now(),
        roots,
    })
    .map_err(|e| anyhow!("the recorded session does not verify on the prover's side: {e}"))?;
    let expected = Attestation::from_handshake(
        &summary,
        target.port,
        attestation.notary_key_id,
        attestation.time,
    );
    // `expected` carries the template's port (the URL's port was checked against it).
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
    let (client_keys, server_keys) = match (&secrets, &master12) {
        (Some(s), _) => (
            TrafficKeys::derive(&s.client_application)?,
            TrafficKeys::derive(&s.server_application)?,
        ),
        (None, Some(master)) => {
            let (c, s) = tls12_application_keys(&summary, master);
            (traffic_keys_of_tls12(&c), traffic_keys_of_tls12(&s))
        }
        (None, None) => bail!("the TLS session logged no secrets"),
    };
    if (summary.version == TlsVersion::Tls12) != master12.is_some() {
        bail!("the notary's view of the TLS version differs from the prover's");
    }
    let version = summary.version;
    let sent = decrypt_session(
        version,
        Direction::ClientToServer,
        &client_keys,
        &client_records,
    )?;
    if sent != request {
        bail!("the recorded request differs from the one sent");
    }
    let received = decrypt_session(
        version,
        Direction::ServerToClient,
        &server_keys,
        &server_records,
    )?;
    if received != response {
        bail!("the recorded response differs from the one read");
    }
    let (declaration, account) = template
        .locate(&received, t.params)
        .context("the response does not fit the dataset's template")?;
    let value = declaration.value.within("value", received.len())?;
    if value.len() + t.scale as usize > MAX_DIGITS_WITH_SCALE {
        bail!(
            "the value's text is {} characters; with the dataset's scale {} that is more than \
             the {MAX_DIGITS_WITH_SCALE} digits the parties parse",
            value.len(),
            t.scale
        );
    }
    let proof = Proof {
        attestation: signed,
        dataset: t.dataset.to_string(),
        template_hash: template.hash(t.dataset),
        client_records,
        server_records,
        client_keys,
        server_keys,
        declaration,
    };
    proof.check_records(&attestation)?;
    let found = Found {
        value: String::from_utf8_lossy(&received[value]).into_owned(),
        account,
    };
    progress(&format!(
        "attested by the notary; {} application records",
        attestation.records.len()
    ));
    Ok((proof, found))
}
