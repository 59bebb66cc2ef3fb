//! Dataset templates for proven contributions: which HTTPS server, which request and which
//! JSON field a value must come from, and the checks of a response against them.
//!
//! The prover uses a template to find where the value and the account id lie in its
//! response; the parties use it to check the request line and Host, and the response they
//! open with the value left out.
//!
//! # JSON paths
//!
//! A path is dot-separated steps; a step is a key, or `name[key=value]` for the element of
//! the array under `name` whose string field `key` equals `value` (exactly one element must
//! match). Keys and selector values hold no `.`, `[`, `]` or `=`.
//!
//! # The window check
//!
//! The parties open every response byte except the value's text (the window). To check that
//! the window is exactly the JSON string at the value path, [`Template::check_response`]
//! writes a fresh random marker into the window and requires the string at the path to be
//! the marker: the marker occurs nowhere else, and no JSON text outside the window can spell
//! it (it is chosen after those bytes are fixed), so the string must be the window itself.
//! The prover's [`Template::locate`] finds its ranges with the same check.

use std::ops::Range;

use anyhow::{anyhow, bail, Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::proof::{ByteRange, Declaration};

/// Where a proven value comes from. Lives in `cluster.toml` as `[dataset.template]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The HTTPS server's DNS name, checked against its certificate by the notary.
    pub server_name: String,
    /// The request method; only `GET` is supported.
    #[serde(default = "default_method")]
    pub method: String,
    /// The request path, e.g. `/api/v1/account`.
    pub path: String,
    /// Where the value is in the JSON body: dot-separated keys, and `name[key=value]` to pick
    /// the element of array `name` whose string field `key` equals `value`, e.g.
    /// `balances[asset=ETH].free`. The value must be a JSON string holding a decimal.
    pub value: String,
    /// Where the account id is (a JSON string), e.g. `account`.
    pub account: String,
    /// Decimal places the server writes: the value text has exactly this many after its
    /// point (none and no point when 0). Digits beyond the dataset's scale are truncated.
    pub decimals: u32,
    /// The oldest attestation accepted, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
}

fn default_method() -> String {
    "GET".into()
}

fn default_max_age() -> u64 {
    3600
}

impl Template {
    /// Checks the template itself against its dataset's scale.
    pub fn validate(&self, scale: u32) -> Result<()> {
        if self.method != "GET" {
            bail!("method {:?}: only GET is supported", self.method);
        }
        if !self.path.starts_with('/') || self.path.bytes().any(|c| c <= b' ' || c >= 0x7f) {
            bail!(
                "path {:?} must start with / and hold no spaces or control characters",
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
        if self.decimals < scale {
            bail!(
                "the server writes {} decimals, fewer than the dataset's scale {scale}",
                self.decimals
            );
        }
        if self.decimals > 30 {
            bail!("decimals {} is above 30", self.decimals);
        }
        parse_path(&self.value).with_context(|| format!("value path {:?}", self.value))?;
        parse_path(&self.account).with_context(|| format!("account path {:?}", self.account))?;
        Ok(())
    }

    /// The start of every accepted request: request line and Host header, opened to the
    /// parties. Everything after it (the other headers, with credentials) stays hidden.
    pub fn request_prefix(&self) -> Vec<u8> {
        format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.server_name
        )
        .into_bytes()
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    key: String,
    /// `[field=value]`: pick the array element whose string `field` equals `value`.
    select: Option<(String, String)>,
}

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['.', '[', ']', '=', '"', '\\'])
        && !s.chars().any(char::is_control)
}

/// Parses a path of the grammar in the module documentation.
fn parse_path(path: &str) -> Result<Vec<Step>> {
    if path.is_empty() {
        bail!("empty path");
    }
    path.split('.')
        .map(|step| {
            let (key, select) = match step.split_once('[') {
                None => (step, None),
                Some((key, rest)) => {
                    let inner = rest
                        .strip_suffix(']')
                        .with_context(|| format!("step {step:?}: expected name[key=value]"))?;
                    let (field, value) = inner
                        .split_once('=')
                        .with_context(|| format!("step {step:?}: expected name[key=value]"))?;
                    if !plain_name(field) || !plain_name(value) {
                        bail!("step {step:?}: bad selector");
                    }
                    (key, Some((field.to_string(), value.to_string())))
                }
            };
            if !plain_name(key) {
                bail!("step {step:?}: expected a non-empty key without . [ ] = \" \\");
            }
            Ok(Step {
                key: key.to_string(),
                select,
            })
        })
        .collect()
}

/// The JSON value at `path`.
fn lookup<'a>(root: &'a Value, path: &str) -> Result<&'a Value> {
    let mut at = root;
    for step in parse_path(path)? {
        let next = at
            .as_object()
            .with_context(|| format!("path {path:?}: expected an object before {:?}", step.key))?
            .get(&step.key)
            .with_context(|| format!("path {path:?}: no key {:?}", step.key))?;
        at = match &step.select {
            None => next,
            Some((field, value)) => {
                let items = next
                    .as_array()
                    .with_context(|| format!("path {path:?}: {:?} is not an array", step.key))?;
                let mut found = items
                    .iter()
                    .filter(|item| item.get(field).and_then(Value::as_str) == Some(value));
                let first = found.next().with_context(|| {
                    format!(
                        "path {path:?}: no element of {:?} has {field} = {value:?}",
                        step.key
                    )
                })?;
                if found.next().is_some() {
                    bail!(
                        "path {path:?}: several elements of {:?} have {field} = {value:?}",
                        step.key
                    );
                }
                first
            }
        };
    }
    Ok(at)
}

/// The JSON string at `path`.
fn string_at<'a>(root: &'a Value, path: &str) -> Result<&'a str> {
    lookup(root, path)?
        .as_str()
        .with_context(|| format!("path {path:?}: expected a JSON string"))
}

/// A checked HTTP/1.1 response: where its body starts.
struct Response {
    body_start: usize,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Checks the status line and headers of a single complete 200 response with a
/// Content-Length body and nothing after it.
fn check_http(response: &[u8]) -> Result<Response> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("HTTP: no end of headers (CRLF CRLF)")?;
    let head = std::str::from_utf8(&response[..head_end])
        .map_err(|_| anyhow!("HTTP: the response head is not ASCII"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let reason = status
        .strip_prefix("HTTP/1.1 200 ")
        .or_else(|| (status == "HTTP/1.1 200").then_some(""))
        .with_context(|| format!("HTTP: status line {status:?}, expected \"HTTP/1.1 200 OK\""))?;
    if reason
        .bytes()
        .any(|c| c != b'\t' && !(b' '..0x7f).contains(&c))
    {
        bail!("HTTP: bad reason phrase in {status:?}");
    }
    let mut content_length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("HTTP: malformed header line {line:?}"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            bail!("HTTP: malformed header name in {line:?}");
        }
        if value
            .bytes()
            .any(|c| c != b'\t' && !(b' '..0x7f).contains(&c))
        {
            bail!("HTTP: control or non-ASCII characters in header {name:?}");
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("HTTP: Transfer-Encoding is refused (only Content-Length bodies)");
        }
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                bail!("HTTP: Content-Length appears twice");
            }
            if value.is_empty() || value.len() > 12 || !value.bytes().all(|c| c.is_ascii_digit()) {
                bail!("HTTP: Content-Length {value:?} is not a number");
            }
            content_length = Some(value.parse::<usize>()?);
        }
    }
    let length = content_length.context("HTTP: no Content-Length header")?;
    let body_start = head_end + 4;
    let body_len = response.len() - body_start;
    if body_len < length {
        bail!("HTTP: Content-Length {length}, but the body has only {body_len} bytes");
    }
    if body_len > length {
        bail!(
            "HTTP: {} bytes after the {length}-byte body: expected exactly one response",
            body_len - length
        );
    }
    Ok(Response { body_start })
}

/// A random marker of lower-case hex: needs no JSON escaping.
fn fresh_marker() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("mpcstats-{}", hex::encode(bytes))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses `body` with `window` (body offsets) replaced by a fresh marker; returns the JSON and
/// the marker.
fn parse_with_marker(body: &[u8], window: Range<usize>) -> Result<(Value, String)> {
    let marker = fresh_marker();
    if contains(body, marker.as_bytes()) {
        bail!("the random marker occurs in the response");
    }
    let mut marked = Vec::with_capacity(body.len() + marker.len());
    marked.extend_from_slice(&body[..window.start]);
    marked.extend_from_slice(marker.as_bytes());
    marked.extend_from_slice(&body[window.end..]);
    let json: Value = serde_json::from_slice(&marked).context("the response body is not JSON")?;
    Ok((json, marker))
}

impl Template {
    /// Prover side: checks the whole server application data `response` as the parties will
    /// (status, headers, one response, JSON) and returns where the value's and the account
    /// id's text lie (the JSON strings' contents, without quotes).
    pub fn locate(&self, response: &[u8]) -> Result<Declaration> {
        let http = check_http(response)?;
        let body = &response[http.body_start..];
        let json: Value = serde_json::from_slice(body).context("the response body is not JSON")?;
        let value = string_at(&json, &self.value)
            .with_context(|| format!("finding the value at {:?}", self.value))?;
        self.check_value_text(value)?;
        let account = string_at(&json, &self.account)
            .with_context(|| format!("finding the account id at {:?}", self.account))?;
        let value_range = self
            .find_window(body, value, &self.value)?
            .context("the value's text is not where the path points (escaped?)")?;
        let account_range = self
            .find_window(body, account, &self.account)?
            .context("the account id's text is not where the path points (escaped?)")?;
        let offset = |r: Range<usize>| r.start + http.body_start..r.end + http.body_start;
        let declaration = Declaration {
            value: ByteRange::from(offset(value_range)),
            account: ByteRange::from(offset(account_range)),
        };
        // The parties' check, on what they will see.
        let value = declaration.value.within("value", response.len())?;
        let mut opened = response.to_vec();
        opened[value.clone()].fill(b'0');
        let checked = self.check_response(&opened, value)?;
        if checked != account {
            bail!("the account id {checked:?} the parties would see differs from {account:?}");
        }
        Ok(declaration)
    }

    /// The value text the server must write: digits, and exactly `decimals` digits after a
    /// point (no point when `decimals` is 0).
    fn check_value_text(&self, text: &str) -> Result<()> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        let ok = digits(int)
            && match frac {
                None => self.decimals == 0,
                Some(f) => self.decimals > 0 && digits(f) && f.len() == self.decimals as usize,
            };
        if !ok {
            bail!(
                "the value {text:?} is not a decimal with exactly {} decimal places",
                self.decimals
            );
        }
        Ok(())
    }

    /// The unique occurrence of `"text"` in `body` whose content is the JSON string at
    /// `path` (body offsets of the content).
    fn find_window(&self, body: &[u8], text: &str, path: &str) -> Result<Option<Range<usize>>> {
        let quoted = format!("\"{text}\"");
        let mut found = None;
        let mut from = 0;
        while let Some(pos) = body[from..]
            .windows(quoted.len())
            .position(|w| w == quoted.as_bytes())
        {
            let start = from + pos + 1;
            let window = start..start + text.len();
            from = start;
            let Ok((json, marker)) = parse_with_marker(body, window.clone()) else {
                continue;
            };
            if string_at(&json, path).is_ok_and(|s| s == marker) {
                if found.is_some() {
                    bail!("path {path:?} matches two places in the response");
                }
                found = Some(window);
            }
        }
        Ok(found)
    }

    /// Party side: checks the response the parties opened, with the bytes of the value
    /// window unknown (any filler), against this template, and returns the account id.
    ///
    /// Checks: status `HTTP/1.1 200`, header syntax, a `Content-Length` equal to the body's
    /// length, no `Transfer-Encoding`, nothing after the body, the window inside the body, a
    /// JSON body, and that the JSON string at the value path is exactly the window.
    pub fn check_response(&self, opened: &[u8], value: Range<usize>) -> Result<String> {
        if value.start >= value.end || value.end > opened.len() {
            bail!(
                "the value window {}..{} is not within the {}-byte response",
                value.start,
                value.end,
                opened.len()
            );
        }
        let http = check_http(opened)?;
        if value.start < http.body_start {
            bail!(
                "the value window {}..{} is not inside the body (it starts at byte {})",
                value.start,
                value.end,
                http.body_start
            );
        }
        let body = &opened[http.body_start..];
        let window = value.start - http.body_start..value.end - http.body_start;
        let (json, marker) = parse_with_marker(body, window)?;
        let at = string_at(&json, &self.value)
            .with_context(|| format!("the value path {:?}", self.value))?;
        if at != marker {
            bail!(
                "the value window is not the JSON string at {:?}",
                self.value
            );
        }
        let account = string_at(&json, &self.account)
            .with_context(|| format!("the account path {:?}", self.account))?;
        if account.contains(&marker) {
            bail!("the account id overlaps the value window");
        }
        Ok(account.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::exchange::{generate_accounts, Exchange};

    fn template() -> Template {
        Template {
            server_name: "api.exchange.test".into(),
            method: "GET".into(),
            path: "/api/v1/account".into(),
            value: "balances[asset=ETH].free".into(),
            account: "account".into(),
            decimals: 8,
            max_age_secs: 3600,
        }
    }

    fn response() -> (Vec<u8>, String, String) {
        let accounts = generate_accounts(5, 42);
        let ex = Exchange::new(accounts.clone());
        let r = ex.respond(
            b"GET /api/v1/account HTTP/1.1\r\nHost: api.exchange.test\r\nX-API-KEY: key-3\r\n\r\n",
        );
        let eth = accounts[3].balance("ETH").unwrap().to_string();
        let btc = accounts[3].balance("BTC").unwrap().to_string();
        (r, eth, btc)
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
    fn paths_parse() {
        assert_eq!(parse_path("a.b").unwrap().len(), 2);
        let p = parse_path("balances[asset=ETH].free").unwrap();
        assert_eq!(p[0].select, Some(("asset".into(), "ETH".into())));
        for bad in ["", "a..b", "a[b]", "a[=x]", "a[b=]", "a[b=c", ".a", "a."] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(template().validate(8).is_ok());
        let mut t = template();
        t.value = "x[".into();
        assert!(t.validate(8).is_err());
    }

    #[test]
    fn genuine_response_locates_and_checks() {
        let (r, eth, _) = response();
        let t = template();
        let d = t.locate(&r).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        let a = d.account.within("account", r.len()).unwrap();
        assert_eq!(&r[v.clone()], eth.as_bytes());
        assert_eq!(&r[a], b"acct-3");
        assert_eq!(
            t.check_response(&opened(&r, v.clone()), v).unwrap(),
            "acct-3"
        );
    }

    #[test]
    fn wrong_windows_are_refused() {
        let (r, _, btc) = response();
        let t = template();
        let w = find(&r, &btc);
        assert!(err(t.check_response(&opened(&r, w.clone()), w)).contains("not the JSON string"));
        let w = find(&r, "acct-3");
        assert!(err(t.check_response(&opened(&r, w.clone()), w)).contains("not the JSON string"));
        // A window covering the quotes makes the body invalid JSON or the wrong string.
        let d = t.locate(&r).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        let wide = v.start - 1..v.end + 1;
        assert!(t.check_response(&opened(&r, wide.clone()), wide).is_err());
        let short = v.start..v.end - 1;
        assert!(t.check_response(&opened(&r, short.clone()), short).is_err());
        // In the head.
        let w = find(&r, "200");
        assert!(err(t.check_response(&r, w)).contains("not inside the body"));
        assert!(t.check_response(&r, 5..5).is_err());
        assert!(t.check_response(&r, r.len()..r.len() + 1).is_err());
    }

    #[test]
    fn bad_responses_are_refused() {
        let (r, _, _) = response();
        let t = template();
        let d = t.locate(&r).unwrap();
        let v = d.value.within("value", r.len()).unwrap();
        let text = String::from_utf8(r.clone()).unwrap();

        let status = text.replacen("200 OK", "201 OK", 1).into_bytes();
        assert!(err(t.check_response(&status, v.clone())).contains("status line"));
        assert!(err(t.locate(&status)).contains("status line"));
        let ok_other = text.replacen("200 OK", "200 Fine", 1).into_bytes();
        assert!(t.check_response(&ok_other, v.start + 2..v.end + 2).is_ok());

        let mut two = r.clone();
        two.extend_from_slice(&r);
        assert!(err(t.check_response(&two, v.clone())).contains("exactly one response"));
        assert!(err(t.locate(&two)).contains("exactly one response"));

        let cl = text
            .replacen("Content-Length: ", "Content-Length: 1", 1)
            .into_bytes();
        assert!(err(t.check_response(&cl, v.start + 1..v.end + 1)).contains("Content-Length"));
        let mut short = r.clone();
        short.pop();
        assert!(err(t.check_response(&short, v.clone())).contains("Content-Length"));
        let none = text
            .replacen("Content-Length", "Content-Lengthy", 1)
            .into_bytes();
        assert!(err(t.check_response(&none, v.start + 1..v.end + 1)).contains("no Content-Length"));
        let te = text
            .replacen("Connection: close", "Transfer-Encoding: chunked", 1)
            .into_bytes();
        assert!(err(t.check_response(&te, v.start + 8..v.end + 8)).contains("Transfer-Encoding"));
        let bad_header = text
            .replacen("Connection: close", "Connection close", 1)
            .into_bytes();
        assert!(err(t.check_response(&bad_header, v.start - 1..v.end - 1)).contains("header"));

        let mut missing = t.clone();
        missing.value = "balances[asset=DOGE].free".into();
        assert!(err(missing.locate(&r)).contains("DOGE"));
        assert!(missing
            .check_response(&opened(&r, v.clone()), v.clone())
            .is_err());
        let mut missing = t.clone();
        missing.account = "user".into();
        assert!(err(missing.locate(&r)).contains("user"));
        let mut same = t.clone();
        same.account = same.value.clone();
        assert!(same
            .check_response(&opened(&r, v.clone()), v.clone())
            .is_err());
        let mut decimals = t.clone();
        decimals.decimals = 6;
        assert!(err(decimals.locate(&r)).contains("decimal places"));

        let ex = Exchange::new(generate_accounts(5, 42));
        let unauthorized = ex.respond(b"GET /api/v1/account HTTP/1.1\r\n\r\n");
        assert!(err(t.locate(&unauthorized)).contains("status line"));
    }
}
