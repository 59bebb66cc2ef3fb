//! The notary's check of a recorded handshake (`oracle::handshake::verify`, TLS 1.3 and 1.2):
//! the input is split into the client's bytes, the server's bytes and the revealed secret,
//! checked against an empty and a built-in root store. Holds no decoder of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcstats::oracle::handshake::{verify, HandshakeCheck};
use rustls::RootCertStore;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let a = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let b = usize::from(data[2]);
    let rest = &data[4..];
    let a = a.min(rest.len());
    let (client, rest) = rest.split_at(a);
    let b = b.min(rest.len());
    let (secret, server) = rest.split_at(b);
    let roots = RootCertStore::empty();
    let check = HandshakeCheck {
        client_to_server: client,
        server_to_client: server,
        server_handshake_secret: secret,
        server_name: if data[3] & 1 == 0 {
            "api.exchange.test"
        } else {
            "127.0.0.1"
        },
        now: 1_760_000_000,
        roots: &roots,
    };
    // No trust anchor: nothing can verify.
    assert!(verify(&check).is_err());
});
