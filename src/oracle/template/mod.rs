//! Dataset templates for proven contributions: which HTTPS server and port, which request
//! (query parameter by parameter) and which JSON field a value must come from, and the checks
//! of a response against them.
//!
//! The prover uses a template to build its request and to find where the value lies in its
//! response; the parties use it to check the request head inside the MPC and the response
//! they open with the value left out.
//!
//! # Layout
//!
//! * [`request`] — the request head as fixed, public and hidden segments; the safe set.
//! * [`http`] — HTTP/1.1 responses: status, headers, Content-Length and chunked bodies.
//! * [`json`] — JSON paths and the marker check that a window is the value at a path.
//! * [`value`] — the text a value may have (digits, at most one point).
//!
//! Must not hold: network code, MPC code, or any response or request byte in a party-side
//! error ([`Template::check_response`] names checks and offsets only).

pub mod http;
pub mod json;
pub mod request;
pub mod value;

use std::ops::Range;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::proof::{ByteRange, Declaration};

pub use request::{RequestLayout, Segment};

/// Where a proven value comes from. Lives in `cluster.toml` as `[dataset.template]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The HTTPS server's DNS name, checked against its certificate by the notary.
    pub server_name: String,
    /// The server's TCP port; the notary dials only this port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The request method; only `GET` is supported.
    #[serde(default = "default_method")]
    pub method: String,
    /// The request path without query, e.g. `/api/v3/account`.
    pub path: String,
    /// The query parameters, in order (none: no query string).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryParam>,
    /// A signing scheme `prove` applies to the request for the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<Signing>,
    /// Where the value is in the JSON body: dot-separated keys, and `name[key=value]` to pick
    /// the element of array `name` whose field `key` equals `value`, e.g.
    /// `balances[asset=ETH].free`. The value is a JSON number or a string holding a decimal.
    pub value: String,
    /// Where the account id is (a JSON string or integer), e.g. `uid`.
    pub account: String,
    /// The most decimal places the server writes (0 to 30; any number up to this is accepted
    /// in one dataset). Digits beyond the dataset's scale are truncated.
    pub decimals: u32,
    /// The oldest attestation accepted, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
}

/// One query parameter of the request target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParam {
    /// The parameter's name (always checked).
    pub name: String,
    /// `fixed` (default when `value` is given), `public`, or `hidden` (default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ParamKind>,
    /// The value of a fixed parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What the parties learn of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// Name and value opened and compared with the template.
    Fixed,
    /// Name compared; the value opened to the parties (any safe value).
    Public,
    /// Name compared; the value stays hidden and is checked for the safe set in MPC.
    Hidden,
}

impl QueryParam {
    /// The effective kind.
    pub fn kind(&self) -> ParamKind {
        self.kind.unwrap_or(if self.value.is_some() {
            ParamKind::Fixed
        } else {
            ParamKind::Hidden
        })
    }
}

/// A signing scheme the prover applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    pub scheme: SigningScheme,
    /// The header that carries the API key, e.g. `X-MBX-APIKEY`.
    pub key_header: String,
}

/// The signing schemes `prove` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningScheme {
    /// Binance's: `timestamp` (unix milliseconds) set by the prover, then `signature` =
    /// hex HMAC-SHA256(secret, the query string before it), as the last parameter.
    #[serde(rename = "hmac-sha256-query")]
    HmacSha256Query,
}

fn default_port() -> u16 {
    443
}

fn default_method() -> String {
    "GET".into()
}

fn default_max_age() -> u64 {
    3600
}

fn param_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
}

impl Template {
    /// Checks the template itself against its dataset's scale.
    pub fn validate(&self, scale: u32) -> Result<()> {
        if self.method != "GET" {
            bail!("method {:?}: only GET is supported", self.method);
        }
        if !self.path.starts_with('/')
            || self
                .path
                .bytes()
                .any(|c| c <= b' ' || c >= 0x7f || c == b'?' || c == b'#')
        {
            bail!(
                "path {:?} must start with / and hold no query (use [[dataset.template.query]]), \
                 fragment, spaces or control characters",
                self.path
            );
        }
        if self.server_name.is_empty()
            || !self
                .server_name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        {
            bail!(
                "server_name {:?} must be a lower-case DNS name",
                self.server_name
            );
        }
        if self.port == 0 {
            bail!("port 0");
        }
        if self.decimals > value::MAX_VALUE_LEN as u32 {
            bail!(
                "decimals {} is above {}",
                self.decimals,
                value::MAX_VALUE_LEN
            );
        }
        if scale as usize >= value::MAX_DIGITS_WITH_SCALE {
            bail!("scale {scale} leaves no digits for proven values");
        }
        for (i, p) in self.query.iter().enumerate() {
            if !param_name_ok(&p.name) {
                bail!(
                    "query parameter {i}: name {:?} must be letters, digits, -._~",
                    p.name
                );
            }
            if self.query[..i].iter().any(|q| q.name == p.name) {
                bail!("query parameter {:?} appears twice", p.name);
            }
            match (p.kind(), &p.value) {
                (ParamKind::Fixed, Some(v)) if request::is_safe_value(v.as_bytes()) => {}
                (ParamKind::Fixed, Some(_)) => bail!(
                    "query parameter {}: the fixed value must be letters, digits, \
                     -._~!$'()*+,;=:@/? and %XX escapes",
                    p.name
                ),
                (ParamKind::Fixed, None) => {
                    bail!(
                        "query parameter {}: a fixed parameter needs a value",
                        p.name
                    )
                }
                (_, Some(_)) => bail!(
                    "query parameter {}: only a fixed parameter has a value in the template",
                    p.name
                ),
                _ => {}
            }
        }
        if let Some(s) = &self.signing {
            match s.scheme {
                SigningScheme::HmacSha256Query => {
                    let last = self.query.last();
                    if last.map(|p| (p.name.as_str(), p.kind()))
                        != Some(("signature", ParamKind::Hidden))
                    {
                        bail!("signing hmac-sha256-query: the last query parameter must be a hidden `signature`");
                    }
                    match self.query.iter().find(|p| p.name == "timestamp") {
                        Some(p) if p.kind() != ParamKind::Fixed => {}
                        _ => bail!("signing hmac-sha256-query: the query needs a `timestamp` parameter (hidden or public)"),
                    }
                }
            }
            if !param_name_ok(&s.key_header) {
                bail!(
                    "signing: key_header {:?} is not a header name",
                    s.key_header
                );
            }
        }
        json::parse_path(&self.value).with_context(|| format!("value path {:?}", self.value))?;
        json::parse_path(&self.account)
            .with_context(|| format!("account path {:?}", self.account))?;
        Ok(())
    }

    /// The hash a proof is bound to: SHA-256 over the dataset's name and this template. A
    /// party refuses a submission whose hash is not its own dataset's.
    pub fn hash(&self, dataset: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"mpcstats template v2\0");
        h.update(dataset.as_bytes());
        h.update([0]);
        // Serialising a plain struct of strings and numbers cannot fail.
        h.update(serde_json::to_vec(self).unwrap_or_default());
        h.finalize().into()
    }

    /// Prover side: checks the whole server application data `response` as the parties will
    /// and returns where the value's text lies (offsets into `response`) and the account id
    /// the parties will find.
    pub fn locate(&self, response: &[u8], params: Vec<u32>) -> Result<(Declaration, String)> {
        let http = http::parse_response(response).map_err(|e| {
            // The status code alone tells the provider what went wrong; no other byte of the
            // response goes into an error.
            let code: String = response
                .strip_prefix(b"HTTP/1.1 ")
                .unwrap_or_default()
                .iter()
                .take(3)
                .filter(|c| c.is_ascii_digit())
                .map(|&c| c as char)
                .collect();
            match e {
                http::HttpError::Status if code.len() == 3 => anyhow!(
                    "the server answered status {code}, not 200: check the credentials, the URL \
                     and its parameters (e.g. with curl)"
                ),
                e => anyhow!(e),
            }
        })?;
        let body = http.body(response);
        let json: Value = serde_json::from_slice(&body).context("the response body is not JSON")?;
        let window = json::find_window(&body, &json, &self.value)
            .with_context(|| format!("finding the value at {:?}", self.value))?;
        value::check_value_text(&body[window.clone()], self.decimals)
            .with_context(|| format!("the value at {:?}", self.value))?;
        let value = http
            .unmap(&window)
            .context("the value's text spans two chunks of the body: the parties refuse that")?;
        let declaration = Declaration {
            value: ByteRange::from(value.clone()),
            params,
        };
        // The parties' check, on what they will see.
        let mut opened = response.to_vec();
        opened[value.clone()].fill(b'0');
        let account = self.check_response(&opened, value)?;
        Ok((declaration, account))
    }

    /// Party side: checks the response the parties opened, with the bytes of the value
    /// window unknown (any filler), against this template, and returns the account id.
    ///
    /// Checks: one complete `HTTP/1.1 200` response (Content-Length or chunked, not
    /// compressed, nothing after it), the window inside one piece of the body's data, a JSON
    /// body, the window exactly the JSON value at the value path, and the account id (a
    /// string or an integer) at the account path.
    pub fn check_response(&self, opened: &[u8], value: Range<usize>) -> Result<String> {
        if value.start >= value.end || value.end > opened.len() {
            bail!(
                "the value window {}..{} is not within the {}-byte response",
                value.start,
                value.end,
                opened.len()
            );
        }
        let http = http::parse_response(opened)?;
        let window = http.map(&value).with_context(|| {
            format!(
                "the value window {}..{} is not inside the body's data (one chunk)",
                value.start, value.end
            )
        })?;
        let body = http.body(opened);
        json::check_window(&body, &window, &self.value, &self.account)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oracle::exchange::{generate_accounts, Exchange};

    pub fn template() -> Template {
        Template {
            server_name: "api.exchange.test".into(),
            port: 443,
            method: "GET".into(),
            path: "/api/v1/account".into(),
            query: vec![],
            signing: None,
            value: "balances[asset=ETH].free".into(),
            account: "account".into(),
            decimals: 8,
            max_age_secs: 3600,
        }
    }

    /// Binance's shape: fixed options, a hidden timestamp and signature.
    pub fn signed_template() -> Template {
        let q = |name: &str, value: Option<&str>| QueryParam {
            name: name.into(),
            kind: None,
            value: value.map(String::from),
        };
        Template {
            server_name: "api.signed.test".into(),
            port: 8443,
            path: "/api/v3/account".into(),
            query: vec![
                q("omitZeroBalances", Some("true")),
                q("recvWindow", Some("60000")),
                q("timestamp", None),
                q("signature", None),
            ],
            signing: Some(Signing {
                scheme: SigningScheme::HmacSha256Query,
                key_header: "X-MBX-APIKEY".into(),
            }),
            account: "uid".into(),
            ..template()
        }
    }

    fn response() -> (Vec<u8>, String) {
        let accounts = generate_accounts(5, 42);
        let ex = Exchange::new(accounts.clone());
        let r = ex.respond(
            b"GET /api/v1/account HTTP/1.1\r\nHost: api.exchange.test\r\nX-API-KEY: key-3\r\n\r\n",
        );
        let btc = accounts[3].balance("BTC").unwrap().to_string();
        (r, btc)
    }

    fn opened(r: &[u8], window: Range<usize>) -> Vec<u8> {
        let mut o = r.to_vec();
        o[window].fill(b'0');
        o
    }

    fn find(r: &[u8], text: &str) -> Range<usize> {
        let p = r
            .windows(text.len())
            .position(|w| w == text.as_bytes())
            .unwrap();
        p..p + text.len()
    }

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn templates_validate() {
        assert!(template().validate(8).is_ok());
        assert!(signed_template().validate(8).is_ok());
        let mut t = template();
        t.value = "x[".into();
        assert!(t.validate(8).is_err());
        let mut t = template();
        t.path = "/a?b=c".into();
        assert!(err(t.validate(8)).contains("query"));
        let mut t = signed_template();
        t.query.pop();
        assert!(err(t.validate(8)).contains("signature"));
        let mut t = signed_template();
        t.query[2].value = Some("1".into());
        assert!(t.validate(8).is_err());
        let mut t = signed_template();
        t.query[1].name = "a b".into();
        assert!(t.validate(8).is_err());
        let mut t = signed_template();
        t.query[1].name = "omitZeroBalances".into();
        assert!(err(t.validate(8)).contains("twice"));
        let mut t = signed_template();
        t.query[0].value = Some("a&b".into());
        assert!(t.validate(8).is_err());
        let mut t = template();
        t.port = 0;
        assert!(t.validate(8).is_err());
        let mut t = template();
        t.decimals = 30;
        assert!(t.validate(8).is_ok());
        t.decimals = 31;
        assert!(err(t.validate(8)).contains("decimals 31 is above 30"));
        // The hash binds the dataset and every field.
        let (a, b) = (template(), signed_template());
        assert_ne!(a.hash("d"), b.hash("d"));
        assert_ne!(a.hash("d"), a.hash("e"));
        let mut c = template();
        c.decimals = 7;
        assert_ne!(a.hash("d"), c.hash("d"));
    }

    #[test]
    fn templates_parse_from_toml() {
        let t: Template = toml::from_str(
            r#"
            server_name = "api.signed.test"
            port = 8443
            path = "/api/v3/account"
            value = "balances[asset=ETH].free"
            account = "uid"
            decimals = 8
            signing = { scheme = "hmac-sha256-query", key_header = "X-MBX-APIKEY" }
            query = [
              { name = "omitZeroBalances", value = "true" },
              { name = "recvWindow", value = "60000" },
              { name = "timestamp" },
              { name = "signature" },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(t, signed_template());
        assert_eq!(
            t.param_kinds(),
            vec![
                ParamKind::Fixed,
                ParamKind::Fixed,
                ParamKind::Hidden,
                ParamKind::Hidden
            ]
        );
        let t: Template = toml::from_str(
            "server_name = \"a.test\"\npath = \"/\"\nvalue = \"v\"\naccount = \"a\"\ndecimals = 2\nquery = [{ name = \"q\", kind = \"public\" }]",
        )
        .unwrap();
        assert_eq!((t.port, t.query[0].kind()), (443, ParamKind::Public));
    }

    #[test]
    fn genuine_response_locates_and_checks() {
        let (r, _) = response();
        let t = template();
        let (d, _) = t.locate(&r, vec![]).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        assert_eq!(
            t.check_response(&opened(&r, v.clone()), v).unwrap(),
            "acct-3"
        );
    }

    #[test]
    fn wrong_windows_are_refused() {
        let (r, btc) = response();
        let t = template();
        let w = find(&r, &btc);
        assert!(err(t.check_response(&opened(&r, w.clone()), w)).contains("not the JSON value"));
        let w = find(&r, "acct-3");
        assert!(err(t.check_response(&opened(&r, w.clone()), w)).contains("not the JSON value"));
        let (d, _) = t.locate(&r, vec![]).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        // A window over the quotes as well is the whole JSON string: the template accepts its
        // place, and the MPC's digit check refuses its quotes (`oracle::mpc::tests`).
        let short = v.start..v.end - 1;
        assert!(t.check_response(&opened(&r, short.clone()), short).is_err());
        let w = find(&r, "200");
        assert!(err(t.check_response(&r, w)).contains("not inside the body"));
        assert!(t.check_response(&r, 5..5).is_err());
        assert!(t.check_response(&r, r.len()..r.len() + 1).is_err());
    }

    #[test]
    fn bad_responses_are_refused_and_errors_hold_no_response_bytes() {
        let (r, _) = response();
        let t = template();
        let (d, _) = t.locate(&r, vec![]).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        let text = String::from_utf8(r.clone()).unwrap();

        let status = text.replacen("200 OK", "401 OK", 1).into_bytes();
        let e = err(t.check_response(&status, v.clone()));
        assert!(e.contains("status line") && !e.contains("401"), "{e}");
        // The prover is told its own status code.
        assert!(err(t.locate(&status, vec![])).contains("401"));

        let mut two = r.clone();
        two.extend_from_slice(&r);
        assert!(err(t.check_response(&two, v.clone())).contains("exactly one response"));

        let gzip = text
            .replacen("Connection: close", "Content-Encoding: gzip", 1)
            .into_bytes();
        let shift = "Content-Encoding: gzip".len() - "Connection: close".len();
        let e = err(t.check_response(&gzip, v.start + shift..v.end + shift));
        assert!(e.contains("compressed") && !e.contains("gzip"), "{e}");

        let mut missing = t.clone();
        missing.value = "balances[asset=DOGE].free".into();
        assert!(err(missing.locate(&r, vec![])).contains("DOGE"));
        let mut missing = t.clone();
        missing.account = "user".into();
        assert!(missing
            .check_response(&opened(&r, v.clone()), v.clone())
            .is_err());
        let mut decimals = t.clone();
        decimals.decimals = 6;
        assert!(err(decimals.locate(&r, vec![])).contains("decimals"));

        // No error of the parties' check quotes the opened response.
        let secretish = "acct-3";
        for bad in [&status, &two, &gzip] {
            let e = err(t.check_response(bad, v.clone()));
            assert!(!e.contains(secretish) && !e.contains("401"), "{e}");
        }
    }

    #[test]
    fn chunked_and_numeric_responses() {
        let body = r#"{"id":583231,"followers":1234,"name":"x"}"#;
        let (a, b) = body.split_at(20);
        let r = format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes();
        let t = Template {
            value: "followers".into(),
            account: "id".into(),
            decimals: 0,
            ..template()
        };
        let (d, _) = t.locate(&r, vec![]).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        assert_eq!(&r[v.clone()], b"1234");
        assert_eq!(
            t.check_response(&opened(&r, v.clone()), v).unwrap(),
            "583231"
        );
        // A value split across two chunks is refused at prove.
        let (a, b) = body.split_at(27);
        let split = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes();
        assert!(err(t.locate(&split, vec![])).contains("two chunks"));
        // … and by the parties, whatever window the provider declares across the boundary:
        // its filler hides the chunk framing, so the chunked body no longer parses.
        let text = String::from_utf8(split.clone()).unwrap();
        let at = text.find("12\r\n").unwrap();
        let across = at..text.find("34,").unwrap() + 2;
        let e = err(t.check_response(&opened(&split, across.clone()), across));
        assert!(e.contains("chunked body at byte"), "{e}");
        // A window over a chunk-size line's digits alone is not inside the data either.
        let size = text.find("\r\n1b\r\n").unwrap() + 2;
        let e = err(t.check_response(&split, size..size + 2));
        assert!(e.contains("not inside the body's data (one chunk)"), "{e}");
        // Exponents and signs are refused by name at prove.
        for (json, what) in [
            (r#"{"id":1,"followers":12e3}"#, "exponent"),
            (r#"{"id":1,"followers":-12}"#, "sign"),
            (r#"{"id":1,"followers":"١٢"}"#, "non-ASCII"),
        ] {
            let r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            );
            let e = err(t.locate(r.as_bytes(), vec![]));
            assert!(e.contains(what), "{json}: {e}");
        }
    }
}
