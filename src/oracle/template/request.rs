//! The request a template accepts: `GET path?p1=v1&p2=v2… HTTP/1.1\r\nHost: …\r\n`, query
//! parameter by parameter, then hidden headers and a blank line.
//!
//! [`RequestLayout`] splits that head into segments the parties treat differently: **fixed**
//! bytes (the method, path, every parameter name and fixed value, Host) are compared with the
//! template inside the MPC, and only the verdict is opened; **public** values are opened
//! after that verdict; **hidden** values stay secret and are checked inside the MPC only for
//! the safe character set of [`is_safe_char`] — so a hidden value cannot end the request
//! target, start a header or smuggle a second request. The lengths of the public and hidden
//! values are declared by the prover (TLS record lengths reveal them anyway).
//!
//! Must not hold: network code, or the values of hidden parameters in any error.

use std::ops::Range;

use anyhow::{bail, Result};

use super::{ParamKind, Template};

/// Longest public or hidden parameter value accepted.
pub const MAX_PARAM_LEN: usize = 1024;

/// What the parties do with a segment of the request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Compared with the template inside the MPC.
    Fixed,
    /// Opened to the parties (after the fixed segments matched).
    Public,
    /// Checked inside the MPC for the safe set only.
    Hidden,
}

/// The head of an accepted request as segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLayout {
    /// Segments in order, covering `0..len`.
    pub segments: Vec<(Segment, Range<usize>)>,
    /// The expected head, with zeros in public and hidden segments.
    pub expected: Vec<u8>,
}

impl RequestLayout {
    /// Length of the head.
    pub fn len(&self) -> usize {
        self.expected.len()
    }

    /// Whether the head is empty (never, for a valid template).
    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }

    /// The ranges of one kind of segment.
    pub fn ranges(&self, kind: Segment) -> Vec<Range<usize>> {
        self.segments
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn push(&mut self, kind: Segment, bytes: &[u8]) {
        let start = self.expected.len();
        match kind {
            Segment::Fixed => self.expected.extend_from_slice(bytes),
            _ => self.expected.resize(start + bytes.len(), 0),
        }
        let end = self.expected.len();
        if start == end {
            return;
        }
        match self.segments.last_mut() {
            Some((Segment::Fixed, r)) if kind == Segment::Fixed => r.end = end,
            _ => self.segments.push((kind, start..end)),
        }
    }
}

/// A byte a hidden or public parameter value may hold: ALPHA, DIGIT, `-._~!$'()*+,;=:@/?`
/// and `%` (only as the start of a `%XX` escape, checked separately). Never space, CR, LF,
/// `&`, `#`, `"`, `<`, `>`, a control or a non-ASCII byte.
pub fn is_safe_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~!$'()*+,;=:@/?%".contains(&c)
}

/// Whether `value` is a safe parameter value: safe bytes, every `%` followed by two hex
/// digits.
pub fn is_safe_value(value: &[u8]) -> bool {
    value.iter().enumerate().all(|(i, &c)| {
        is_safe_char(c)
            && (c != b'%'
                || (value.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && value.get(i + 2).is_some_and(u8::is_ascii_hexdigit)))
    })
}

impl Template {
    /// The `Host` header value: the name, and `:port` unless 443.
    pub fn host_header(&self) -> String {
        if self.port == 443 {
            self.server_name.clone()
        } else {
            format!("{}:{}", self.server_name, self.port)
        }
    }

    /// The kinds of the query parameters, in order.
    pub fn param_kinds(&self) -> Vec<ParamKind> {
        self.query.iter().map(|p| p.kind()).collect()
    }

    /// Number of parameters whose value is not fixed (their lengths are declared).
    pub fn variable_params(&self) -> usize {
        self.param_kinds()
            .iter()
            .filter(|k| **k != ParamKind::Fixed)
            .count()
    }

    /// The layout for the declared lengths of the non-fixed parameter values, in order.
    pub fn request_layout(&self, lens: &[u32]) -> Result<RequestLayout> {
        if lens.len() != self.variable_params() {
            bail!(
                "{} parameter lengths declared; the template has {} public or hidden parameters",
                lens.len(),
                self.variable_params()
            );
        }
        let mut layout = RequestLayout {
            segments: Vec::new(),
            expected: Vec::new(),
        };
        layout.push(
            Segment::Fixed,
            format!("{} {}", self.method, self.path).as_bytes(),
        );
        let mut lens = lens.iter();
        for (i, p) in self.query.iter().enumerate() {
            let sep = if i == 0 { "?" } else { "&" };
            layout.push(Segment::Fixed, format!("{sep}{}=", p.name).as_bytes());
            match p.kind() {
                ParamKind::Fixed => {
                    layout.push(Segment::Fixed, p.value.as_deref().unwrap_or("").as_bytes())
                }
                kind => {
                    let len = *lens.next().unwrap_or(&0) as usize;
                    if len > MAX_PARAM_LEN {
                        bail!(
                            "parameter {}: {len} bytes declared, at most {MAX_PARAM_LEN}",
                            p.name
                        );
                    }
                    let seg = if kind == ParamKind::Public {
                        Segment::Public
                    } else {
                        Segment::Hidden
                    };
                    layout.push(seg, &vec![0; len]);
                }
            }
        }
        layout.push(
            Segment::Fixed,
            format!(" HTTP/1.1\r\nHost: {}\r\n", self.host_header()).as_bytes(),
        );
        Ok(layout)
    }

    /// Prover side: the request head for `values` (one per query parameter, fixed ones
    /// included and equal to the template's), and the declared lengths.
    pub fn request_head(&self, values: &[String]) -> Result<(Vec<u8>, Vec<u32>)> {
        if values.len() != self.query.len() {
            bail!(
                "{} parameter values for {} template parameters",
                values.len(),
                self.query.len()
            );
        }
        let mut target = format!("{} {}", self.method, self.path);
        let mut lens = Vec::new();
        for (i, (p, v)) in self.query.iter().zip(values).enumerate() {
            match p.kind() {
                ParamKind::Fixed if Some(v.as_str()) != p.value.as_deref() => {
                    bail!("parameter {} must be the template's fixed value", p.name)
                }
                ParamKind::Fixed => {}
                _ => {
                    if v.len() > MAX_PARAM_LEN || !is_safe_value(v.as_bytes()) {
                        bail!(
                            "parameter {}: the value must be at most {MAX_PARAM_LEN} bytes of \
                             letters, digits, -._~!$'()*+,;=:@/? and %XX escapes",
                            p.name
                        );
                    }
                    lens.push(v.len() as u32);
                }
            }
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(&p.name);
            target.push('=');
            target.push_str(v);
        }
        let head = format!("{target} HTTP/1.1\r\nHost: {}\r\n", self.host_header());
        Ok((head.into_bytes(), lens))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::signed_template;
    use super::*;

    #[test]
    fn safe_set() {
        for ok in ["1700000000000", "a1B2-._~", "%2F%2f", "x/y?z=1", ""] {
            assert!(is_safe_value(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "a b", "a\r", "a\n", "a&b", "a#b", "%", "%2", "%zz", "a%2", "\"", "<", "é", "\t",
        ] {
            assert!(!is_safe_value(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn layout_matches_the_built_head() {
        let t = signed_template();
        let values: Vec<String> = ["true", "60000", "1700000000000", &"ab".repeat(32)]
            .map(String::from)
            .to_vec();
        let (head, lens) = t.request_head(&values).unwrap();
        assert_eq!(lens, vec![13, 64]);
        assert!(head.starts_with(
            b"GET /api/v3/account?omitZeroBalances=true&recvWindow=60000&timestamp=1700000000000&signature="
        ));
        assert!(head.ends_with(b" HTTP/1.1\r\nHost: api.signed.test:8443\r\n"));
        let layout = t.request_layout(&lens).unwrap();
        assert_eq!(layout.len(), head.len());
        for (kind, r) in &layout.segments {
            match kind {
                Segment::Fixed => assert_eq!(&head[r.clone()], &layout.expected[r.clone()]),
                Segment::Hidden => assert!(r.len() == 13 || r.len() == 64),
                Segment::Public => panic!("no public parameter"),
            }
        }
        assert_eq!(layout.ranges(Segment::Hidden).len(), 2);
        // Wrong counts, fixed values changed, unsafe values.
        assert!(t.request_layout(&[13]).is_err());
        assert!(t.request_layout(&[13, MAX_PARAM_LEN as u32 + 1]).is_err());
        assert_eq!(
            t.request_layout(&[13, MAX_PARAM_LEN as u32]).unwrap().len(),
            layout.len() - 64 + MAX_PARAM_LEN
        );
        let mut v = values.clone();
        v[3] = "a".repeat(MAX_PARAM_LEN);
        assert!(t.request_head(&v).is_ok());
        v[3].push('a');
        assert!(t.request_head(&v).is_err());
        let mut v = values.clone();
        v[1] = "5000".into();
        assert!(t.request_head(&v).is_err());
        let mut v = values.clone();
        v[2] = "1 HTTP/1.1\r\nX: y".into();
        assert!(t.request_head(&v).is_err());
        assert!(t.request_head(&values[..3]).is_err());
    }
}
