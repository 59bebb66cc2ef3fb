//! Local HTTPS sources in the shapes of real APIs, for tests, the demo and `examples/`: they
//! are the "websites" whose answers are proven, so nothing here is trusted by the oracle.
//!
//! * [`signed`] — an exchange in Binance's signed shape: `GET /api/v3/account?…&timestamp=…
//!   &signature=…` with `X-MBX-APIKEY`, the HMAC checked by the server, a numeric `uid`,
//!   balances with as many decimals as they need (`"0.01"`, `"12.5"`), and a switch to close
//!   without a TLS close_notify.
//! * [`profile`] — a profile API: `GET /v1/me` with a bearer token, numeric fields
//!   (`"followers": 1234`, `"id": 583231`), a chunked body.
//!
//! Each source's HTTP logic is a pure function of the request head; [`serve`] is the network
//! layer. Certificates come from `exchange::ExchangePki`.

pub mod profile;
pub mod signed;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::exchange::read_head;

/// A source's HTTP logic: the whole response to a request head.
pub type Handler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// How a source ends its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// A TLS close_notify, then TCP FIN.
    Notify,
    /// TCP FIN right after the response, no close_notify (as many servers do).
    Abrupt,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections forever, one task each: TLS handshake, one request, one response,
/// then the close `close` names. Per-connection failures go to stderr.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Handler,
    close: Close,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        tokio::spawn(async move {
            let work = async {
                let mut tls = acceptor.accept(tcp).await?;
                let head = read_head(&mut tls).await?;
                tls.write_all(&handler(&head)).await?;
                tls.flush().await?;
                match close {
                    Close::Notify => tls.shutdown().await?,
                    Close::Abrupt => {
                        let (mut tcp, _) = tls.into_inner();
                        tcp.shutdown().await?;
                    }
                }
                Ok::<_, std::io::Error>(())
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("source: connection from {peer}: {e}"),
                Err(_) => eprintln!("source: connection from {peer}: timed out"),
            }
        });
    }
}

/// A request head's target and headers, as the sources read them.
pub(crate) struct Head<'a> {
    pub method: &'a str,
    pub target: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Head<'a> {
    /// Parses `METHOD TARGET HTTP/1.1` and the header lines; `None` if malformed.
    pub fn parse(head: &'a [u8]) -> Option<Head<'a>> {
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.split("\r\n");
        let parts: Vec<&str> = lines.next()?.split(' ').collect();
        let [method, target, "HTTP/1.1"] = parts[..] else {
            return None;
        };
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once(':').map(|(n, v)| (n.trim(), v.trim())))
            .collect::<Option<_>>()?;
        Some(Head {
            method,
            target,
            headers,
        })
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A JSON error response with a Content-Length body.
pub(crate) fn error(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `free` with its trailing zero decimals dropped: `12.50000000` → `12.5`, `3.00000000` → `3`.
pub fn trim_decimals(free: &str) -> String {
    match free.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => free.to_string(),
    }
}
