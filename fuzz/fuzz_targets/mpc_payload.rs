//! The MPC transport's round payloads: ring elements (Z_2^64, Z_2^128, Z_2^256), GF(2^64)
//! and Galois-ring elements, decoded for an expected count taken from the input's first
//! bytes. Holds no decoder of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::engine::verify::galois::Gr;
use mpcstats::engine::verify::gf64::Gf64;
use mpcstats::engine::{Ring, Z128, Z256, Z64};

fn ring<R: Ring>(bytes: &[u8], n: usize) {
    let got = R::decode_vec(bytes, n);
    assert_eq!(got.is_some(), n.checked_mul(R::BYTES) == Some(bytes.len()));
    if let Some(v) = got {
        assert_eq!(R::encode_slice(&v), bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, bytes) = data.split_at(data.len().min(8));
    let mut n = [0u8; 8];
    n[..head.len()].copy_from_slice(head);
    let wild = u64::from_le_bytes(n) as usize;
    for n in [
        wild,
        wild % 64,
        bytes.len() / 8,
        bytes.len() / 16,
        bytes.len() / 32,
    ] {
        ring::<Z64>(bytes, n);
        ring::<Z128>(bytes, n);
        ring::<Z256>(bytes, n);
        let _ = Gf64::decode_vec(bytes, n);
        let _ = Gr::<Z64>::decode_vec(bytes, n);
        let _ = Gr::<Z128>::decode_vec(bytes, n);
    }
});
