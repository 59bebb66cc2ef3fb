//! An exchange in Binance's signed shape (`GET /api/v3/account`, SIGNED): the request carries
//! `timestamp` (unix milliseconds) and `signature` = hex HMAC-SHA256(api secret, the query
//! string before it) as its last parameter, and the API key in `X-MBX-APIKEY`. The server
//! checks both and the `recvWindow`, as Binance does, and answers with a numeric `uid` and
//! balances as strings with only the decimals they need (Coinbase-style: `"0.01"`, `"12.5"`,
//! `"3"`), zero balances left out when `omitZeroBalances=true`.

use std::collections::HashMap;

use crate::oracle::exchange::{generate_accounts, Balance};
use crate::oracle::signing::hmac_sha256_hex;

use super::{error, trim_decimals, Head};

/// The server's DNS name.
pub const NAME: &str = "api.signed.test";
/// The account endpoint.
pub const PATH: &str = "/api/v3/account";
/// The API key header.
pub const KEY_HEADER: &str = "X-MBX-APIKEY";

/// One account: a numeric uid, an API key and secret, balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAccount {
    pub uid: u64,
    pub api_key: String,
    pub api_secret: String,
    /// Balances with 8 decimals (written trimmed).
    pub balances: Vec<Balance>,
}

impl SignedAccount {
    /// The balance of `asset` as the server writes it (trimmed).
    pub fn written(&self, asset: &str) -> Option<String> {
        self.balances
            .iter()
            .find(|b| b.asset == asset)
            .map(|b| trim_decimals(&b.free))
    }
}

/// `n` accounts with uids from 354937868, keys `mbx-key-<i>`, secrets `mbx-secret-<i>`, the
/// balances of `exchange::generate_accounts(n, seed)`. Account 0 holds exactly 12.5 ETH and
/// account 1 exactly 0.01 ETH (so every dataset sees both shapes).
pub fn accounts(n: usize, seed: u64) -> Vec<SignedAccount> {
    generate_accounts(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut balances = a.balances;
            let fixed = match i {
                0 => Some("12.50000000"),
                1 => Some("0.01000000"),
                2 => Some("7.00000000"),
                _ => None,
            };
            if let (Some(v), Some(eth)) = (fixed, balances.iter_mut().find(|b| b.asset == "ETH")) {
                eth.free = v.into();
            }
            SignedAccount {
                uid: 354_937_868 + 7919 * i as u64,
                api_key: format!("mbx-key-{i}"),
                api_secret: format!("mbx-secret-{i}"),
                balances,
            }
        })
        .collect()
}

/// The exchange's accounts and HTTP logic.
#[derive(Debug, Clone, Default)]
pub struct SignedExchange {
    by_key: HashMap<String, SignedAccount>,
}

fn unauthorized(code: i32, msg: &str) -> Vec<u8> {
    error(401, &format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"))
}

impl SignedExchange {
    pub fn new(accounts: Vec<SignedAccount>) -> Self {
        SignedExchange {
            by_key: accounts
                .into_iter()
                .map(|a| (a.api_key.clone(), a))
                .collect(),
        }
    }

    /// The response to `head` at server time `now_ms`.
    pub fn respond(&self, head: &[u8], now_ms: u64) -> Vec<u8> {
        let Some(h) = Head::parse(head) else {
            return error(400, "{\"code\":-1100,\"msg\":\"Malformed request.\"}");
        };
        let (path, query) = h.target.split_once('?').unwrap_or((h.target, ""));
        if h.method != "GET" || path != PATH {
            return error(404, "{\"code\":-1000,\"msg\":\"Not found.\"}");
        }
        let Some(account) = h.header(KEY_HEADER).and_then(|k| self.by_key.get(k)) else {
            return unauthorized(-2015, "Invalid API-key, IP, or permissions for action.");
        };
        let Some((payload, signature)) = query.rsplit_once("&signature=") else {
            return error(
                400,
                "{\"code\":-1102,\"msg\":\"Mandatory parameter 'signature' was not sent.\"}",
            );
        };
        if hmac_sha256_hex(&account.api_secret, payload) != signature {
            return unauthorized(-1022, "Signature for this request is not valid.");
        }
        let params: HashMap<&str, &str> = payload
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let number = |k: &str| params.get(k).and_then(|v| v.parse::<u64>().ok());
        let window = number("recvWindow").unwrap_or(5000).min(60_000);
        match number("timestamp") {
            Some(ts) if ts <= now_ms + 1000 && now_ms.saturating_sub(ts) <= window => {}
            _ => {
                return error(
                    400,
                    "{\"code\":-1021,\"msg\":\"Timestamp for this request is outside of the recvWindow.\"}",
                )
            }
        }
        let omit_zero = params.get("omitZeroBalances") == Some(&"true");
        let balances: Vec<String> = account
            .balances
            .iter()
            .map(|b| (b, trim_decimals(&b.free)))
            .filter(|(_, free)| !(omit_zero && free == "0"))
            .map(|(b, free)| {
                format!(
                    "{{\"asset\":\"{}\",\"free\":\"{free}\",\"locked\":\"0\"}}",
                    b.asset
                )
            })
            .collect();
        let body = format!(
            "{{\"makerCommission\":10,\"takerCommission\":10,\"canTrade\":true,\"canWithdraw\":true,\
             \"updateTime\":{now_ms},\"accountType\":\"SPOT\",\"balances\":[{}],\"permissions\":[\"SPOT\"],\
             \"uid\":{}}}",
            balances.join(","),
            account.uid
        );
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json;charset=UTF-8\r\nCONTENT-LENGTH: {}\r\n\
             x-mbx-used-weight: 20\r\nServer: nginx\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, key: &str) -> Vec<u8> {
        format!("GET {PATH}?{query} HTTP/1.1\r\nHost: {NAME}\r\n{KEY_HEADER}: {key}\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn signatures_windows_and_bodies() {
        let accounts = accounts(3, 4);
        let ex = SignedExchange::new(accounts.clone());
        let now = 1_700_000_000_000u64;
        let payload = format!("omitZeroBalances=true&recvWindow=60000&timestamp={now}");
        let sig = hmac_sha256_hex("mbx-secret-0", &payload);
        let ok = String::from_utf8(ex.respond(
            &request(&format!("{payload}&signature={sig}"), "mbx-key-0"),
            now + 10,
        ))
        .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("\"uid\":354937868"));
        assert!(
            ok.contains("{\"asset\":\"ETH\",\"free\":\"12.5\",\"locked\":\"0\"}"),
            "{ok}"
        );
        let status = |r: Vec<u8>| String::from_utf8(r).unwrap()[9..12].to_string();
        let bad_sig = format!("{payload}&signature={}", "0".repeat(64));
        assert_eq!(
            status(ex.respond(&request(&bad_sig, "mbx-key-0"), now)),
            "401"
        );
        let other_key = format!("{payload}&signature={sig}");
        assert_eq!(
            status(ex.respond(&request(&other_key, "mbx-key-1"), now)),
            "401"
        );
        assert_eq!(
            status(ex.respond(&request(&other_key, "mbx-key-0"), now + 70_000)),
            "400"
        );
        assert_eq!(
            status(ex.respond(&request(&payload, "mbx-key-0"), now)),
            "400"
        );
        assert_eq!(status(ex.respond(b"GET /x HTTP/1.1\r\n\r\n", now)), "404");
        assert_eq!(accounts[1].written("ETH").unwrap(), "0.01");
        assert_eq!(accounts[2].written("ETH").unwrap(), "7");
    }
}
