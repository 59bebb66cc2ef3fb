//! HTTP/1.1 responses as servers send them: the status line, headers in any order and case,
//! and a body framed by `Content-Length` or by `Transfer-Encoding: chunked`.
//!
//! The parties run [`parse_response`] on the response they opened (the value's text replaced
//! by filler), so its errors name the check that failed and a byte offset or line number,
//! never the bytes themselves. Must not hold: JSON or template logic.

use std::ops::Range;

use thiserror::Error;

/// Why a response is not one complete `200` response.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("HTTP: no end of the response head (CRLF CRLF)")]
    NoHeadEnd,
    #[error("HTTP: the status line is not \"HTTP/1.1 200 …\"")]
    Status,
    #[error("HTTP: header line {line} is malformed (expected \"Name: value\" in printable ASCII)")]
    HeaderLine { line: usize },
    #[error("HTTP: header line {line}: {what} appears twice")]
    Duplicate { line: usize, what: &'static str },
    #[error("HTTP: Content-Length is not a decimal number")]
    ContentLength,
    #[error("HTTP: Transfer-Encoding other than exactly \"chunked\" is refused")]
    TransferEncoding,
    #[error("HTTP: both Content-Length and Transfer-Encoding: refused (ambiguous framing)")]
    BothFramings,
    #[error("HTTP: neither Content-Length nor Transfer-Encoding: chunked (a body delimited by the connection's end is refused)")]
    NoFraming,
    #[error("HTTP: Content-Encoding other than identity: a compressed body is refused (the prover asks for Accept-Encoding: identity)")]
    Compressed,
    #[error("HTTP: Content-Length {expected}, but the body has only {found} bytes")]
    Short { expected: usize, found: usize },
    #[error("HTTP: {0} bytes after the body: expected exactly one response")]
    Trailing(usize),
    #[error("HTTP: chunked body at byte {at}: {what}")]
    Chunk { at: usize, what: &'static str },
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    ContentLength,
    Chunked,
}

/// A checked response: where its head ends and where the body's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Offset of the first byte after the head's CRLF CRLF.
    pub body_start: usize,
    pub framing: Framing,
    /// The body's data, as ranges of the response, in order (one range for Content-Length;
    /// each chunk's data for chunked bodies, chunk-size lines and CRLFs excluded).
    pub data: Vec<Range<usize>>,
}

impl Response {
    /// The body's bytes, de-chunked.
    pub fn body(&self, response: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.iter().map(|r| r.len()).sum());
        for r in &self.data {
            out.extend_from_slice(&response[r.clone()]);
        }
        out
    }

    /// `window` (offsets into the response) as offsets into the de-chunked body, if it lies
    /// inside the data of one chunk (or of the Content-Length body).
    pub fn map(&self, window: &Range<usize>) -> Option<Range<usize>> {
        let mut before = 0;
        for r in &self.data {
            if r.start <= window.start && window.end <= r.end && window.start < window.end {
                let start = before + window.start - r.start;
                return Some(start..start + window.len());
            }
            before += r.len();
        }
        None
    }

    /// The inverse of [`Response::map`]: body offsets to response offsets, if inside one
    /// range of data.
    pub fn unmap(&self, window: &Range<usize>) -> Option<Range<usize>> {
        let mut before = 0;
        for r in &self.data {
            let here = before..before + r.len();
            if here.start <= window.start && window.end <= here.end && window.start < window.end {
                let start = r.start + window.start - here.start;
                return Some(start..start + window.len());
            }
            before += r.len();
        }
        None
    }
}

fn printable(c: u8) -> bool {
    c == b'\t' || (b' '..0x7f).contains(&c)
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// One "Name: value" line: the name and the value without surrounding blanks.
fn header(line: &[u8], number: usize) -> Result<(&[u8], &[u8]), HttpError> {
    let bad = HttpError::HeaderLine { line: number };
    let colon = line.iter().position(|&c| c == b':').ok_or(bad.clone())?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) || !value.iter().all(|&c| printable(c))
    {
        return Err(bad);
    }
    let trim = |v: &[u8]| -> usize { v.iter().take_while(|c| **c == b' ' || **c == b'\t').count() };
    let lead = trim(value);
    let value = &value[lead..];
    let tail = value
        .iter()
        .rev()
        .take_while(|c| **c == b' ' || **c == b'\t')
        .count();
    Ok((name, &value[..value.len() - tail]))
}

/// Splits `bytes` into CRLF-terminated lines up to and including the first empty line;
/// returns the lines and the offset after the empty line.
fn lines_until_blank(bytes: &[u8], from: usize) -> Option<(Vec<Range<usize>>, usize)> {
    let mut lines = Vec::new();
    let mut at = from;
    loop {
        let rel = bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        if rel == 0 {
            return Some((lines, at + 2));
        }
        lines.push(at..at + rel);
        at += rel + 2;
    }
}

/// Checks `response` is exactly one complete `HTTP/1.1 200` response whose body is framed by
/// Content-Length or chunked transfer coding, uncompressed, with nothing after it.
pub fn parse_response(response: &[u8]) -> Result<Response, HttpError> {
    let (lines, body_start) = lines_until_blank(response, 0).ok_or(HttpError::NoHeadEnd)?;
    let Some((status, headers)) = lines.split_first() else {
        return Err(HttpError::Status);
    };
    let status = &response[status.clone()];
    let reason_ok = match status.strip_prefix(b"HTTP/1.1 200") {
        Some([]) => true,
        Some([b' ', reason @ ..]) => reason.iter().all(|&c| printable(c)),
        _ => false,
    };
    if !reason_ok {
        return Err(HttpError::Status);
    }
    let mut content_length = None;
    let mut chunked = false;
    let mut seen_te = false;
    let mut seen_ce = false;
    for (i, range) in headers.iter().enumerate() {
        let number = i + 2;
        let (name, value) = header(&response[range.clone()], number)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(HttpError::Duplicate {
                    line: number,
                    what: "Content-Length",
                });
            }
            if value.is_empty() || value.len() > 12 || !value.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::ContentLength);
            }
            let n = value
                .iter()
                .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if seen_te {
                return Err(HttpError::Duplicate {
                    line: number,
                    what: "Transfer-Encoding",
                });
            }
            seen_te = true;
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::TransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            if seen_ce {
                return Err(HttpError::Duplicate {
                    line: number,
                    what: "Content-Encoding",
                });
            }
            seen_ce = true;
            if !value.eq_ignore_ascii_case(b"identity") {
                return Err(HttpError::Compressed);
            }
        }
    }
    match (content_length, chunked) {
        (Some(_), true) => Err(HttpError::BothFramings),
        (None, false) => Err(HttpError::NoFraming),
        (Some(length), false) => {
            let found = response.len() - body_start;
            if found < length {
                return Err(HttpError::Short {
                    expected: length,
                    found,
                });
            }
            if found > length {
                return Err(HttpError::Trailing(found - length));
            }
            Ok(Response {
                body_start,
                framing: Framing::ContentLength,
                data: std::iter::once(body_start..response.len()).collect(),
            })
        }
        (None, true) => {
            let data = chunks(response, body_start)?;
            Ok(Response {
                body_start,
                framing: Framing::Chunked,
                data,
            })
        }
    }
}

/// Parses a chunked body starting at `at`: chunk-size lines (hex, optional extensions), data,
/// CRLF; the last chunk of size 0; optional trailer fields; the final CRLF; nothing after.
fn chunks(response: &[u8], mut at: usize) -> Result<Vec<Range<usize>>, HttpError> {
    let mut data = Vec::new();
    loop {
        let line_end = response[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| at + p)
            .ok_or(HttpError::Chunk {
                at,
                what: "no end of the chunk-size line",
            })?;
        let line = &response[at..line_end];
        let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 8 {
            return Err(HttpError::Chunk {
                at,
                what: "the chunk size is not 1 to 8 hex digits",
            });
        }
        let rest = &line[digits..];
        let ext_ok = rest.is_empty()
            || (rest
                .first()
                .is_some_and(|&c| c == b';' || c == b' ' || c == b'\t')
                && rest.iter().all(|&c| printable(c)));
        if !ext_ok {
            return Err(HttpError::Chunk {
                at,
                what: "malformed chunk extension",
            });
        }
        let size = line[..digits].iter().fold(0usize, |n, &c| {
            n * 16 + (c as char).to_digit(16).unwrap_or(0) as usize
        });
        at = line_end + 2;
        if size == 0 {
            let (trailers, end) = lines_until_blank(response, at).ok_or(HttpError::Chunk {
                at,
                what: "no final CRLF after the last chunk",
            })?;
            for (i, t) in trailers.iter().enumerate() {
                header(&response[t.clone()], i + 1).map_err(|_| HttpError::Chunk {
                    at: t.start,
                    what: "malformed trailer field",
                })?;
            }
            if end != response.len() {
                return Err(HttpError::Trailing(response.len() - end));
            }
            return Ok(data);
        }
        if response.len() - at < size + 2 {
            return Err(HttpError::Chunk {
                at,
                what: "the chunk is longer than the rest of the response",
            });
        }
        data.push(at..at + size);
        at += size;
        if &response[at..at + 2] != b"\r\n" {
            return Err(HttpError::Chunk {
                at,
                what: "no CRLF after the chunk's data",
            });
        }
        at += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "{\"a\":\"12.5\"}";

    fn cl(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{extra}\r\n{BODY}",
            BODY.len()
        )
        .into_bytes()
    }

    fn chunked(body: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\nServer: x\r\nTRANSFER-ENCODING: Chunked\r\n\r\n{body}")
            .into_bytes()
    }

    #[test]
    fn content_length_in_any_case_and_order() {
        let r = cl("Content-Type: application/json\r\n");
        let p = parse_response(&r).unwrap();
        assert_eq!(p.framing, Framing::ContentLength);
        assert_eq!(p.body(&r), BODY.as_bytes());
        let r = cl("content-encoding: Identity\r\n");
        assert!(parse_response(&r).is_ok());
    }

    #[test]
    fn chunked_bodies_map_windows_within_one_chunk() {
        let r = chunked("5\r\n{\"a\":\r\n7;ext=1\r\n\"12.5\"}\r\n0\r\nX-Trailer: y\r\n\r\n");
        let p = parse_response(&r).unwrap();
        assert_eq!(p.framing, Framing::Chunked);
        assert_eq!(p.body(&r), BODY.as_bytes());
        let text = String::from_utf8(r.clone()).unwrap();
        let at = text.find("12.5").unwrap();
        let mapped = p.map(&(at..at + 4)).unwrap();
        assert_eq!(&BODY.as_bytes()[mapped.clone()], b"12.5");
        assert_eq!(p.unmap(&mapped), Some(at..at + 4));
        // A window across a chunk boundary maps to nothing.
        let first = text.find("{\"a\":").unwrap();
        assert_eq!(p.map(&(first + 3..at + 1)), None);
        assert!(parse_response(&chunked("0\r\n\r\n")).is_ok());
    }

    #[test]
    fn refusals_name_the_check() {
        let e = |r: &[u8]| parse_response(r).unwrap_err();
        assert_eq!(
            e(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"),
            HttpError::NoHeadEnd
        );
        assert_eq!(e(&cl("").replace_first("200", "401")), HttpError::Status);
        assert_eq!(e(&cl("").replace_first("1.1", "1.0")), HttpError::Status);
        assert_eq!(
            e(&cl("Content-Length: 3\r\n")),
            HttpError::Duplicate {
                line: 3,
                what: "Content-Length"
            }
        );
        assert_eq!(e(&cl("Content-Encoding: gzip\r\n")), HttpError::Compressed);
        assert_eq!(
            e(&cl("Transfer-Encoding: chunked\r\n")),
            HttpError::BothFramings
        );
        assert_eq!(e(&cl("Bad Header\r\n")), HttpError::HeaderLine { line: 3 });
        assert_eq!(e(&cl("X: a\u{1}b\r\n")), HttpError::HeaderLine { line: 3 });
        let mut two = cl("");
        two.extend_from_slice(&cl(""));
        assert!(matches!(e(&two), HttpError::Trailing(_)));
        let mut short = cl("");
        short.pop();
        assert!(matches!(e(&short), HttpError::Short { .. }));
        assert_eq!(
            e(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody"),
            HttpError::NoFraming
        );
        let te = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(e(te), HttpError::TransferEncoding);
        for bad in [
            "5\r\nabc\r\n0\r\n\r\n",
            "g\r\nabc\r\n0\r\n\r\n",
            "3\r\nabcX\r\n0\r\n\r\n",
            "3\r\nabc\r\n0\r\n",
            "123456789\r\nabc\r\n0\r\n\r\n",
            "3x\r\nabc\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(e(&chunked(bad)), HttpError::Chunk { .. }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            e(&chunked("3\r\nabc\r\n0\r\n\r\nGET")),
            HttpError::Trailing(3)
        ));
    }

    trait ReplaceFirst {
        fn replace_first(&self, from: &str, to: &str) -> Vec<u8>;
    }

    impl ReplaceFirst for Vec<u8> {
        fn replace_first(&self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8(self.clone())
                .unwrap()
                .replacen(from, to, 1)
                .into_bytes()
        }
    }
}
