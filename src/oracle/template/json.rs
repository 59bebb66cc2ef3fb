//! JSON paths and the window check: is a window of the body exactly the JSON value at a path?
//!
//! # Paths
//!
//! A path is dot-separated steps; a step is a key, or `name[key=value]` for the element of
//! the array under `name` whose field `key` equals `value` (a string, or a number written
//! the same way; exactly one element must match). Keys and selector values hold no `.`, `[`,
//! `]` or `=`.
//!
//! # The window check
//!
//! The parties see the body with the value's text (the window) left out. To check that the
//! window is exactly the JSON value at the path, [`check_window`] writes a fresh random
//! marker into the window and requires the value at the path to be the marker: the marker
//! occurs nowhere else, and no JSON text outside the window can spell it (it is chosen after
//! those bytes are fixed), so the value must be the window itself. A window between two
//! quotes is a string's content and gets the bare marker; any other window must be a whole
//! number token and gets the marker in quotes — so a window that is only part of a token
//! (`1` of `12`, `12` of `-12` or of `12e5`) leaves invalid JSON and is refused.
//!
//! Errors name the path and the failed step, never the body's bytes.

use std::ops::Range;

use anyhow::{anyhow, bail, Context, Result};
use rand::RngCore;
use serde_json::Value;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub key: String,
    /// `[field=value]`: pick the array element whose `field` equals `value`.
    pub select: Option<(String, String)>,
}

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['.', '[', ']', '=', '"', '\\'])
        && !s.chars().any(char::is_control)
}

/// Parses a path of the grammar in the module documentation.
pub fn parse_path(path: &str) -> Result<Vec<Step>> {
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

/// The text of a scalar as a selector or an account id compares it: a string's content, or
/// an integer's decimal digits. Other values have none.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// The JSON value at `path`.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Result<&'a Value> {
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
                let mut found = items.iter().filter(|item| {
                    item.get(field).and_then(scalar_text).as_deref() == Some(value.as_str())
                });
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

/// A random marker of lower-case hex: needs no JSON escaping.
fn fresh_marker() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("mpcstats-{}", hex::encode(bytes))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `window` of `body` is a string's content (a quote on each side).
pub fn is_string_window(body: &[u8], window: &Range<usize>) -> bool {
    window.start > 0
        && body.get(window.start - 1) == Some(&b'"')
        && body.get(window.end) == Some(&b'"')
}

/// Parses `body` with `window` replaced by a fresh marker (quoted unless the window is a
/// string's content); returns the JSON and the marker.
fn parse_with_marker(body: &[u8], window: &Range<usize>) -> Result<(Value, String)> {
    let marker = fresh_marker();
    if contains(body, marker.as_bytes()) {
        bail!("the random marker occurs in the response");
    }
    let quote: &[u8] = if is_string_window(body, window) {
        b""
    } else {
        b"\""
    };
    let mut marked = Vec::with_capacity(body.len() + marker.len() + 2);
    marked.extend_from_slice(&body[..window.start]);
    marked.extend_from_slice(quote);
    marked.extend_from_slice(marker.as_bytes());
    marked.extend_from_slice(quote);
    marked.extend_from_slice(&body[window.end..]);
    let json: Value =
        serde_json::from_slice(&marked).map_err(|_| anyhow!("the response body is not JSON"))?;
    Ok((json, marker))
}

/// Party side: checks that `window` (body offsets, bytes unknown) is exactly the JSON value at
/// `value_path`, and returns the account id at `account_path` (a string, or an integer's
/// digits) — which must not overlap the window.
pub fn check_window(
    body: &[u8],
    window: &Range<usize>,
    value_path: &str,
    account_path: &str,
) -> Result<String> {
    if window.start >= window.end || window.end > body.len() {
        bail!("the value window is not within the body");
    }
    let (json, marker) = parse_with_marker(body, window)?;
    let at = lookup(&json, value_path).with_context(|| format!("the value path {value_path:?}"))?;
    if at.as_str() != Some(marker.as_str()) {
        bail!("the value window is not the JSON value at {value_path:?}");
    }
    let account = lookup(&json, account_path)
        .with_context(|| format!("the account path {account_path:?}"))?;
    let account = scalar_text(account).with_context(|| {
        format!("the account id at {account_path:?} is not a string or an integer")
    })?;
    if account.contains(&marker) {
        bail!("the account id overlaps the value window");
    }
    Ok(account)
}

/// Prover side: the unique window of `body` that [`check_window`] accepts for the value at
/// `path`. `json` is the parsed body.
pub fn find_window(body: &[u8], json: &Value, path: &str) -> Result<Range<usize>> {
    let candidates: Vec<Range<usize>> = match lookup(json, path)? {
        Value::String(text) => {
            let quoted = format!("\"{text}\"");
            let mut out = Vec::new();
            let mut from = 0;
            while let Some(pos) = body[from..]
                .windows(quoted.len())
                .position(|w| w == quoted.as_bytes())
            {
                let start = from + pos + 1;
                out.push(start..start + text.len());
                from = start;
            }
            out
        }
        Value::Number(_) => number_tokens(body),
        _ => bail!("path {path:?}: expected a JSON number or a string holding a decimal"),
    };
    let mut found = None;
    for window in candidates {
        let Ok((json, marker)) = parse_with_marker(body, &window) else {
            continue;
        };
        if lookup(&json, path).is_ok_and(|v| v.as_str() == Some(marker.as_str())) {
            if found.is_some() {
                bail!("path {path:?} matches two places in the response");
            }
            found = Some(window);
        }
    }
    found.with_context(|| {
        format!("the value's text at {path:?} is not where the path points (escaped?)")
    })
}

/// Every maximal run of number characters `[0-9.eE+-]` outside a string.
fn number_tokens(body: &[u8]) -> Vec<Range<usize>> {
    let is_num = |c: u8| c.is_ascii_digit() || b".eE+-".contains(&c);
    let mut out = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut start = None;
    for (i, &c) in body.iter().enumerate() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match (start, is_num(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
        if c == b'"' {
            in_string = true;
        }
    }
    if let Some(s) = start {
        out.push(s..body.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"uid":354937868,"balances":[{"asset":"BTC","free":"1.5"},{"asset":"ETH","free":12.25,"locked":"0"}],"n":-12,"e":12e5}"#;

    fn json() -> Value {
        serde_json::from_str(BODY).unwrap()
    }

    fn find(text: &str) -> Range<usize> {
        let p = BODY.find(text).unwrap();
        p..p + text.len()
    }

    #[test]
    fn paths_parse() {
        assert_eq!(parse_path("a.b").unwrap().len(), 2);
        let p = parse_path("balances[asset=ETH].free").unwrap();
        assert_eq!(p[0].select, Some(("asset".into(), "ETH".into())));
        for bad in ["", "a..b", "a[b]", "a[=x]", "a[b=]", "a[b=c", ".a", "a."] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_and_strings_both_found_and_checked() {
        let b = BODY.as_bytes();
        let w = find_window(b, &json(), "balances[asset=ETH].free").unwrap();
        assert_eq!(&BODY[w.clone()], "12.25");
        assert_eq!(
            check_window(b, &w, "balances[asset=ETH].free", "uid").unwrap(),
            "354937868"
        );
        let w = find_window(b, &json(), "balances[asset=BTC].free").unwrap();
        assert_eq!(&BODY[w.clone()], "1.5");
        assert!(check_window(
            b,
            &w,
            "balances[asset=BTC].free",
            "balances[asset=BTC].asset"
        )
        .is_ok());
        // Selectors match numbers written the same way.
        let j = json();
        assert!(
            lookup(&j, "balances[free=1.5].asset").is_err(),
            "a float is not an integer selector"
        );
        assert_eq!(lookup(&j, "balances[asset=ETH].locked").unwrap(), "0");
    }

    #[test]
    fn partial_and_wrong_windows_are_refused() {
        let b = BODY.as_bytes();
        let path = "balances[asset=ETH].free";
        let w = find("12.25");
        for bad in [w.start..w.end - 1, w.start + 1..w.end, w.start - 1..w.end] {
            assert!(check_window(b, &bad, path, "uid").is_err(), "{bad:?}");
        }
        // A part of a signed or exponent token is no JSON value.
        let n = find("-12");
        assert!(check_window(b, &(n.start + 1..n.end), "n", "uid").is_err());
        let e = find("12e5");
        assert!(check_window(b, &(e.start..e.start + 2), "e", "uid").is_err());
        // The window at another field, and the account path at the window.
        let btc = find("1.5");
        let err = check_window(b, &btc, path, "uid").unwrap_err().to_string();
        assert!(err.contains("not the JSON value"), "{err}");
        let err = check_window(b, &w, path, path).unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
        let uid = find("354937868");
        assert!(check_window(b, &uid, path, "uid").is_err());
        assert!(check_window(b, &(0..0), path, "uid").is_err());
        assert!(check_window(b, &(0..b.len() + 1), path, "uid").is_err());
    }

    #[test]
    fn values_of_other_kinds_are_refused_by_name() {
        let j: Value = serde_json::from_str(r#"{"a":null,"b":[1]}"#).unwrap();
        for p in ["a", "b"] {
            let e = find_window(b"{}", &j, p).unwrap_err().to_string();
            assert!(e.contains("expected a JSON number"), "{e}");
        }
    }
}
