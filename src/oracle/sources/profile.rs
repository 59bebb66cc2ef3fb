//! A profile API: `GET /v1/me` with `Authorization: Bearer <token>` answers a JSON object of
//! numeric fields — `{"id":583231,"login":"user-3","followers":1234,…}` — in a chunked body
//! (`Transfer-Encoding: chunked`, the object split after its first field, as streaming
//! servers do), with headers in the case and order such servers use. The local cluster
//! serves it over TLS 1.2 only (`roles::sources`).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

use super::{error, Head};

/// The server's DNS name.
pub const NAME: &str = "api.profile.test";
/// The endpoint.
pub const PATH: &str = "/v1/me";

/// One profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: u64,
    pub login: String,
    pub token: String,
    pub followers: u64,
    pub following: u64,
}

/// `n` profiles with ids from 583231, tokens `tok-<i>`, follower counts below 100 000 from a
/// ChaCha20 stream seeded with `seed`.
pub fn profiles(n: usize, seed: u64) -> Vec<Profile> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| Profile {
            id: 583_231 + 101 * i as u64,
            login: format!("user-{i}"),
            token: format!("tok-{i}"),
            followers: rng.gen_range(0..100_000),
            following: rng.gen_range(0..1000),
        })
        .collect()
}

/// The API's profiles and HTTP logic.
#[derive(Debug, Clone, Default)]
pub struct ProfileApi {
    by_token: HashMap<String, Profile>,
}

impl ProfileApi {
    pub fn new(profiles: Vec<Profile>) -> Self {
        ProfileApi {
            by_token: profiles.into_iter().map(|p| (p.token.clone(), p)).collect(),
        }
    }

    /// The response to `head`.
    pub fn respond(&self, head: &[u8]) -> Vec<u8> {
        let Some(h) = Head::parse(head) else {
            return error(400, "{\"message\":\"Bad request\"}");
        };
        if h.method != "GET" || h.target != PATH {
            return error(404, "{\"message\":\"Not Found\"}");
        }
        let token = h
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(p) = token.and_then(|t| self.by_token.get(t)) else {
            return error(401, "{\"message\":\"Bad credentials\"}");
        };
        let first = format!("{{\"id\":{}", p.id);
        let rest = format!(
            ",\"login\":\"{}\",\"type\":\"User\",\"followers\":{},\"following\":{},\"public_repos\":{}}}",
            p.login,
            p.followers,
            p.following,
            p.id % 97
        );
        format!(
            "HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Type: application/json; charset=utf-8\r\n\
             Transfer-Encoding: chunked\r\nx-ratelimit-remaining: 4999\r\n\r\n\
             {:x}\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
            first.len(),
            rest.len()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::template::http::{parse_response, Framing};

    #[test]
    fn chunked_profiles() {
        let ps = profiles(3, 1);
        let api = ProfileApi::new(ps.clone());
        let r = api.respond(
            b"GET /v1/me HTTP/1.1\r\nHost: api.profile.test\r\nAuthorization: Bearer tok-2\r\n\r\n",
        );
        let parsed = parse_response(&r).unwrap();
        assert_eq!(parsed.framing, Framing::Chunked);
        let json: serde_json::Value = serde_json::from_slice(&parsed.body(&r)).unwrap();
        assert_eq!(json["followers"], ps[2].followers);
        assert_eq!(json["id"], ps[2].id);
        let status = |r: Vec<u8>| String::from_utf8(r).unwrap()[9..12].to_string();
        assert_eq!(status(api.respond(b"GET /v1/me HTTP/1.1\r\n\r\n")), "401");
        assert_eq!(status(api.respond(b"GET /v2 HTTP/1.1\r\n\r\n")), "404");
    }
}
