//! The provider's request: the URL as the provider gives it, checked against the dataset's
//! template, the query parameters filled in (fixed values, the signing scheme's timestamp and
//! signature), and the headers (the provider's own, the API key, `Accept-Encoding:
//! identity`, `Connection: close`).
//!
//! Must not hold: header values, parameter values or secrets in an error — errors name the
//! parameter or the header's position instead.

use anyhow::{bail, Context, Result};
use rustls::pki_types::ServerName;

use crate::oracle::signing::{hmac_sha256_hex, ApiKey};
use crate::oracle::template::{ParamKind, SigningScheme, Template};

/// A parsed `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Lower-case host name.
    pub host: String,
    pub port: u16,
    /// Path without query, starting with `/`.
    pub path: String,
    /// The query parameters in order (name, value), undecoded.
    pub query: Vec<(String, String)>,
}

/// Parses `https://HOST[:PORT]/PATH[?QUERY]`; host names only (no IP literals, no user info,
/// no fragment).
pub fn parse_url(url: &str) -> Result<HttpsUrl> {
    let rest = url
        .strip_prefix("https://")
        .context("expected an https:// URL")?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains(['@', '[', ']', '#']) {
        bail!("expected https://HOST[:PORT]/PATH with a DNS host name");
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .with_context(|| format!("bad port {p:?} in the URL"))?,
        ),
        None => (authority, 443),
    };
    let host = host.to_ascii_lowercase();
    if !matches!(
        ServerName::try_from(host.as_str()),
        Ok(ServerName::DnsName(_))
    ) {
        bail!("{host:?} is not a DNS host name");
    }
    if target.contains('#') || target.bytes().any(|c| c <= b' ' || c >= 0x7f) {
        bail!("the URL must hold no fragment, spaces or control characters");
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (if p.is_empty() { "/" } else { p }, q),
        None => (target, ""),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .enumerate()
        .map(|(i, kv)| {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("query parameter {}: expected name=value", i + 1))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(HttpsUrl {
        host,
        port,
        path: path.to_string(),
        query,
    })
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The value of every template parameter, in template order: fixed values filled in, the
/// URL's values for the others, and the signing scheme's timestamp and signature.
pub fn param_values(
    template: &Template,
    url: &HttpsUrl,
    key: Option<&ApiKey>,
    now_ms: Option<u64>,
) -> Result<Vec<String>> {
    for (i, (name, _)) in url.query.iter().enumerate() {
        if !template.query.iter().any(|p| &p.name == name) {
            bail!("the URL's query parameter {name:?} is not in the dataset's template");
        }
        if url.query[..i].iter().any(|(n, _)| n == name) {
            bail!("the URL names query parameter {name:?} twice");
        }
    }
    let signed = template
        .signing
        .as_ref()
        .map(|s| s.scheme == SigningScheme::HmacSha256Query)
        .unwrap_or(false);
    if signed && key.is_none() {
        bail!(
            "the dataset's template signs requests: pass --key-file with your API key and secret"
        );
    }
    let given = |name: &str| {
        url.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut values = Vec::with_capacity(template.query.len());
    for p in &template.query {
        let value = match (p.kind(), given(&p.name)) {
            (ParamKind::Fixed, Some(v)) if Some(&v) != p.value.as_ref() => {
                bail!(
                    "query parameter {}: the template fixes its value; leave it out of the URL or give the template's",
                    p.name
                )
            }
            (ParamKind::Fixed, _) => p.value.clone().unwrap_or_default(),
            (_, Some(_)) if signed && p.name == "signature" => {
                bail!("query parameter signature: `prove` signs the request itself; leave it out of the URL")
            }
            (_, Some(v)) => v,
            (_, None) if signed && p.name == "timestamp" => {
                now_ms.unwrap_or_else(now_millis).to_string()
            }
            (_, None) if signed && p.name == "signature" => {
                // Set once every earlier value is known.
                String::new()
            }
            (_, None) => bail!(
                "the dataset's template needs a value for query parameter {}: add {}=… to the URL",
                p.name,
                p.name
            ),
        };
        values.push(value);
    }
    if let (true, Some(key)) = (signed, key) {
        let last = values.len() - 1;
        let query: Vec<String> = template.query[..last]
            .iter()
            .zip(&values)
            .map(|(p, v)| format!("{}={v}", p.name))
            .collect();
        values[last] = hmac_sha256_hex(&key.api_secret, &query.join("&"));
    }
    Ok(values)
}

/// Header names the prover sets itself.
const RESERVED: [&str; 5] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "accept-encoding",
];

/// The whole request: the template's head for `values`, the provider's headers, the API key
/// header, `Accept-Encoding: identity`, `Connection: close`, and the blank line. Returns it
/// with the declared lengths of the non-fixed parameter values.
pub fn build_request(
    template: &Template,
    values: &[String],
    headers: &[String],
    key: Option<&ApiKey>,
) -> Result<(Vec<u8>, Vec<u32>)> {
    let (mut request, lens) = template.request_head(values)?;
    let key_header = template.signing.as_ref().map(|s| s.key_header.as_str());
    for (i, h) in headers.iter().enumerate() {
        let n = i + 1;
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("header {n}: expected \"Name: value\""))?;
        let name = name.trim();
        let value = value.trim_matches([' ', '\t']);
        let tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
        if name.is_empty() || !name.bytes().all(tchar) {
            bail!("header {n}: bad header name");
        }
        if value
            .bytes()
            .any(|c| c != b'\t' && !(b' '..0x7f).contains(&c))
        {
            bail!("header {n} ({name}): control or non-ASCII characters in the value");
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            bail!("header {n} ({name}): set by the prover, cannot be given");
        }
        if key_header.is_some_and(|k| name.eq_ignore_ascii_case(k)) {
            bail!("header {n} ({name}): the API key header is set from --key-file");
        }
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let (Some(name), Some(key)) = (key_header, key) {
        request.extend_from_slice(format!("{name}: {}\r\n", key.api_key).as_bytes());
    }
    request.extend_from_slice(b"Accept-Encoding: identity\r\nConnection: close\r\n\r\n");
    Ok((request, lens))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binance's shape, as the template module's tests define it (port 8443).
    fn signed() -> Template {
        crate::oracle::template::tests::signed_template()
    }

    fn key() -> ApiKey {
        ApiKey {
            api_key: "the-key".into(),
            api_secret: "the-secret".into(),
        }
    }

    #[test]
    fn urls() {
        let u = parse_url("https://API.exchange.test/api/v1/account").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.exchange.test", 443, "/api/v1/account")
        );
        let u = parse_url("https://x.test:8443").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8443, "/"));
        let u = parse_url("https://x.test/a?b=1&c=&d=x%2F").unwrap();
        assert_eq!(u.query.len(), 3);
        assert_eq!(u.query[2], ("d".into(), "x%2F".into()));
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
            "https://x.test/a?b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signed_requests_as_binance_expects() {
        let t = signed();
        let url = parse_url("https://api.signed.test:8443/api/v3/account").unwrap();
        let values = param_values(&t, &url, Some(&key()), Some(1_700_000_000_000)).unwrap();
        let query = "omitZeroBalances=true&recvWindow=60000&timestamp=1700000000000";
        assert_eq!(values[2], "1700000000000");
        assert_eq!(values[3], hmac_sha256_hex("the-secret", query));
        let (request, lens) = build_request(&t, &values, &[], Some(&key())).unwrap();
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with(&format!(
            "GET /api/v3/account?{query}&signature={} HTTP/1.1\r\nHost: api.signed.test:8443\r\n",
            values[3]
        )));
        assert!(text.ends_with(
            "X-MBX-APIKEY: the-key\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
        ));
        assert!(!text.contains("the-secret"));
        assert_eq!(lens, vec![13, 64]);
        // The fixed values may be given, must be the template's.
        let url =
            parse_url("https://api.signed.test:8443/api/v3/account?recvWindow=60000").unwrap();
        assert!(param_values(&t, &url, Some(&key()), None).is_ok());
        for (bad, what) in [
            ("?recvWindow=5000", "fixes its value"),
            ("?signature=abc", "signs the request itself"),
            ("?other=1", "not in the dataset's template"),
            ("?timestamp=1&timestamp=2", "twice"),
        ] {
            let url =
                parse_url(&format!("https://api.signed.test:8443/api/v3/account{bad}")).unwrap();
            let e = format!(
                "{:#}",
                param_values(&t, &url, Some(&key()), None).unwrap_err()
            );
            assert!(e.contains(what), "{bad}: {e}");
        }
        let url = parse_url("https://api.signed.test:8443/api/v3/account").unwrap();
        let e = format!("{:#}", param_values(&t, &url, None, None).unwrap_err());
        assert!(e.contains("--key-file"), "{e}");
    }

    #[test]
    fn header_errors_never_quote_values() {
        let t = signed();
        let url = parse_url("https://api.signed.test:8443/api/v3/account").unwrap();
        let values = param_values(&t, &url, Some(&key()), Some(1)).unwrap();
        for bad in [
            "Authorization Bearer s3cr3t",
            "Host: s3cr3t",
            "accept-encoding: gzip-s3cr3t",
            "X-MBX-APIKEY: s3cr3t",
            "X: s3cr3t\r\nGET / HTTP/1.1",
            "Bad Name: s3cr3t",
        ] {
            let e = format!(
                "{:#}",
                build_request(&t, &values, &[bad.into()], Some(&key())).unwrap_err()
            );
            assert!(!e.contains("s3cr3t"), "{bad}: {e}");
        }
        let (r, _) = build_request(
            &t,
            &values,
            &["Authorization: Bearer tok".into()],
            Some(&key()),
        )
        .unwrap();
        assert!(String::from_utf8(r)
            .unwrap()
            .contains("\r\nAuthorization: Bearer tok\r\n"));
    }
}
