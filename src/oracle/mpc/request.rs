//! The request checks inside the MPC, as circuit wires (nothing is opened here):
//!
//! * **fixed**: every fixed byte of the template's request head (method, path, parameter
//!   names and fixed values, Host) and the final blank line equal the template's — computed
//!   on shares, so checking a proof against the wrong template opens only this verdict;
//! * **one request**: no `\r\n\r\n` before the final one, and every LF preceded by a CR and
//!   every CR followed by an LF (so a server that also accepts bare-LF line endings sees the
//!   same single request head);
//! * **safe values**: every byte of every hidden parameter value is in the safe set
//!   (`template::request::is_safe_char`), and every `%` starts a `%XX` escape within its value.
//!
//! Must not hold: openings, or public parameter values (those are opened by the caller
//! after the verdict).

use std::ops::Range;

use crate::engine::binary::pack;
use crate::engine::error::Result;
use crate::oracle::template::request::is_safe_char;
use crate::oracle::template::{RequestLayout, Segment};

use super::circuit::{Circuit, Wire};
use super::classes::ByteClasses;
use super::inspect::BLANK_LINE;
use super::shared::SharedBytes;

/// The three verdict bits (one-bit wires).
pub struct RequestWires {
    pub fixed_ok: Wire,
    pub one_request_ok: Wire,
    pub hidden_ok: Wire,
}

/// Bit `i` of every byte, packed.
fn plane_of(bytes: &[u8], i: usize) -> Vec<u64> {
    pack(&bytes.iter().map(|b| (b >> i) & 1 == 1).collect::<Vec<_>>())
}

/// The checks of the module documentation over the whole `request` (m bytes, m ≥ the
/// layout's length + 4, checked by the caller).
pub fn request_checks(
    c: &mut Circuit,
    request: &SharedBytes,
    layout: &RequestLayout,
) -> Result<RequestWires> {
    let m = request.len();
    let planes: Vec<Wire> = request.planes.iter().map(|p| c.input(p.clone())).collect();

    // Fixed bytes: the layout's fixed segments and the final blank line.
    let mut fixed: Vec<Range<usize>> = layout.ranges(Segment::Fixed);
    fixed.push(m - BLANK_LINE.len()..m);
    let mut expected = Vec::new();
    for r in &fixed {
        if r.end <= layout.len() {
            expected.extend_from_slice(&layout.expected[r.clone()]);
        } else {
            expected.extend_from_slice(BLANK_LINE);
        }
    }
    let mut same = Vec::with_capacity(8);
    for (i, &plane) in planes.iter().enumerate() {
        let parts: Vec<Wire> = fixed
            .iter()
            .map(|r| c.slice(plane, r.start, r.len()))
            .collect::<Result<_>>()?;
        let got = c.concat(&parts);
        let not_expected: Vec<u8> = expected.iter().map(|b| !b).collect();
        same.push(c.xor_public(got, plane_of(&not_expected, i)));
    }
    let fixed_ok = c.and_all(&same)?;

    // One request: CR and LF at every position.
    let literal = |c: &mut Circuit, byte: u8| -> Result<Wire> {
        let lits: Vec<Wire> = planes
            .iter()
            .enumerate()
            .map(|(i, &p)| if (byte >> i) & 1 == 1 { p } else { c.not(p) })
            .collect();
        c.and_each(&lits)
    };
    let cr = literal(c, b'\r')?;
    let lf = literal(c, b'\n')?;
    let w = m - BLANK_LINE.len();
    let blank = {
        let parts = [
            c.slice(cr, 0, w)?,
            c.slice(lf, 1, w)?,
            c.slice(cr, 2, w)?,
            c.slice(lf, 3, w)?,
        ];
        c.and_each(&parts)?
    };
    let no_blank = c.not(blank);
    let (cr_before, lf_after) = (c.slice(cr, 0, m - 1)?, c.slice(lf, 1, m - 1)?);
    let not_cr_before = c.not(cr_before);
    let not_lf_after = c.not(lf_after);
    let bare_lf = c.and(lf_after, not_cr_before)?;
    let bare_cr = c.and(cr_before, not_lf_after)?;
    let lf_first = c.slice(lf, 0, 1)?;
    let bad_edges = [c.not(bare_lf), c.not(bare_cr), c.not(lf_first)];
    let mut ok = vec![no_blank];
    ok.extend(bad_edges);
    let one_request_ok = c.and_all(&ok)?;

    // Hidden values: the safe set, and %XX.
    let hidden = layout.ranges(Segment::Hidden);
    let hidden_ok = if hidden.is_empty() {
        c.constant(1, true)?
    } else {
        let hidden_planes: Vec<Wire> = planes
            .iter()
            .map(|&p| {
                let parts: Vec<Wire> = hidden
                    .iter()
                    .map(|r| c.slice(p, r.start, r.len()))
                    .collect::<Result<_>>()?;
                Ok(c.concat(&parts))
            })
            .collect::<Result<_>>()?;
        let n: usize = hidden.iter().map(|r| r.len()).sum();
        let classes = ByteClasses::from_planes(c, &hidden_planes, n)?;
        let safe = classes.member(c, is_safe_char)?;
        let pct = classes.member(c, |b| b == b'%')?;
        let hex = classes.member(c, |b| b.is_ascii_hexdigit())?;
        // hex at j + 1 and j + 2 within each value (0 past its end).
        let (mut next1, mut next2) = (Vec::new(), Vec::new());
        let mut at = 0;
        for r in &hidden {
            let k = r.len();
            for (shift, out) in [(1usize, &mut next1), (2usize, &mut next2)] {
                let inside = k.saturating_sub(shift);
                out.push(c.slice(hex, at + shift.min(k), inside)?);
                out.push(c.constant(k - inside, false)?);
            }
            at += k;
        }
        let (next1, next2) = (c.concat(&next1), c.concat(&next2));
        let escape = c.and(next1, next2)?;
        let not_escape = c.not(escape);
        let bad_pct = c.and(pct, not_escape)?;
        let not_bad_pct = c.not(bad_pct);
        c.and_all(&[safe, not_bad_pct])?
    };
    Ok(RequestWires {
        fixed_ok,
        one_request_ok,
        hidden_ok,
    })
}
