//! The client API over HTTP against a real cluster on loopback: every endpoint, every error
//! status, the ETag round trip, that a cached statistic triggers no MPC session (counted at
//! the parties), and a restart that serves from its cache with the cluster gone.

use std::time::{Duration, Instant};

use mpcstats::api::{serve, ApiConfig, StatJson};
use mpcstats::decimal;
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;
use mpcstats::roles::init::example_dataset;
use mpcstats::stats::{reference, Query};
use mpcstats::wire::QuerySpec;
use reqwest::StatusCode;

const DS: &str = "eth_balance";

fn config() -> ApiConfig {
    ApiConfig {
        lorenz_points: 4,
        min_interval: Duration::from_millis(300),
        ..Default::default()
    }
}

fn queries(c: &LocalCluster) -> Vec<u64> {
    c.parties
        .iter()
        .map(|p| p.as_ref().unwrap().queries_run())
        .collect()
}

async fn get(url: &str) -> (StatusCode, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Waits until the API has the configured statistics of `epoch`.
async fn ready(base: &str, epoch: u64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (s, body) = get(&format!("{base}/v1/datasets/{DS}/stats")).await;
        if s == StatusCode::OK && body["epoch"] == epoch {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not ready: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_endpoints_statuses_etags_and_cache() {
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let values: Vec<u128> = (1..=20).map(|v| v * 123_000_000).collect();
    for v in &values {
        client.share(DS, &decimal::format(*v, 8)).await.unwrap();
    }
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("api.db");
    let cluster = c.cluster.clone();
    let api = serve(
        c.cluster.clone(),
        config(),
        &db,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", api.addr);
    let all = ready(&base, 2).await;

    // Datasets: counts, epochs, settings.
    let (s, list) = get(&format!("{base}/v1/datasets")).await;
    assert_eq!(s, StatusCode::OK);
    let eth = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == DS)
        .unwrap();
    assert_eq!(
        (eth["count"].as_u64(), eth["epoch"].as_u64()),
        (Some(20), Some(2))
    );
    assert_eq!(eth["decimals"], 8);
    assert!(eth["privacy"].is_null());

    // Every configured statistic, equal to plaintext.
    let ds = example_dataset();
    for st in all["stats"].as_array().unwrap() {
        let st: StatJson = serde_json::from_value(st.clone()).unwrap();
        let spec = QuerySpec {
            param: st.params.get("q").or(st.params.get("points")).cloned(),
            edges: st
                .params
                .get("edges")
                .map(|e| e.split(',').map(String::from).collect())
                .unwrap_or_default(),
            ..QuerySpec::new(DS, &st.stat)
        };
        let want = reference::answer(&Query::new(&spec, &ds).unwrap(), &values).unwrap();
        assert_eq!(st.value, want.text, "{}", st.stat);
        assert_eq!((st.count, st.epoch, st.decimals), (20, 2, 8));
    }
    let names: Vec<&str> = all["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stat"].as_str().unwrap())
        .collect();
    for want in [
        "count",
        "mean",
        "median",
        "gini",
        "quantile",
        "histogram",
        "lorenz",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    // ETag round trip: the same epoch is 304, with the tag.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/v1/datasets/{DS}/stats"))
        .send()
        .await
        .unwrap();
    let tag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let r = http
        .get(format!("{base}/v1/datasets/{DS}/stats"))
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // A cached statistic triggers no MPC session; an uncached one exactly one, then none.
    let before = queries(&c);
    let (s, mean) = get(&format!("{base}/v1/datasets/{DS}/stats/mean")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        mean["value"],
        all["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stat"] == "mean")
            .unwrap()["value"]
    );
    assert_eq!(queries(&c), before, "served from cache");
    let (s, p90) = get(&format!("{base}/v1/datasets/{DS}/stats/quantile?q=0.9")).await;
    assert_eq!(s, StatusCode::OK, "{p90}");
    let after = queries(&c);
    assert!(
        after.iter().zip(&before).all(|(a, b)| a == &(b + 1)),
        "{before:?} → {after:?}"
    );
    // The same quantile spelled differently is the same query.
    let (s, again) = get(&format!("{base}/v1/datasets/{DS}/stats/percentile?p=90")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["value"], p90["value"]);
    assert_eq!(queries(&c), after, "served from cache");

    // Errors, each with its status and a JSON message.
    for (path, status, needle) in [
        (
            "/v1/datasets/nope/stats",
            StatusCode::NOT_FOUND,
            "unknown dataset",
        ),
        (
            "/v1/datasets/eth_balance/stats/mode",
            StatusCode::NOT_FOUND,
            "unknown statistic",
        ),
        ("/v1/nothing", StatusCode::NOT_FOUND, "no such endpoint"),
        (
            "/v1/datasets/eth_balance/stats/quantile?q=2",
            StatusCode::BAD_REQUEST,
            "above 1",
        ),
        (
            "/v1/datasets/eth_balance/stats/histogram",
            StatusCode::BAD_REQUEST,
            "needs --edges",
        ),
        (
            "/v1/datasets/eth_balance/stats/mean?color=red",
            StatusCode::BAD_REQUEST,
            "unknown parameter",
        ),
        (
            "/v1/datasets/eth_balance/stats/mean?where=%3E%3D%2024",
            StatusCode::CONFLICT,
            "min_cohort",
        ),
        (
            "/v1/datasets/exchange_eth/stats",
            StatusCode::CONFLICT,
            "first release needs",
        ),
    ] {
        let (s, body) = get(&format!("{base}{path}")).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    // The probing budget: the configured histogram, quantiles and Lorenz curve, the 0.9
    // quantile and the filter above used 6 of 8; two more pass, the next is 429.
    for t in ["1", "2"] {
        let (s, b) = get(&format!(
            "{base}/v1/datasets/{DS}/stats/count?where=%3E%3D%20{t}"
        ))
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, body) = get(&format!(
        "{base}/v1/datasets/{DS}/stats/count?where=%3E%3D%203"
    ))
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("query budget"),
        "{body}"
    );

    // History and the OpenAPI document.
    let (s, h) = get(&format!("{base}/v1/datasets/{DS}/history")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h["history"].as_array().unwrap().last().unwrap()["count"],
        20
    );
    let (s, doc) = get(&format!("{base}/openapi.json")).await;
    assert_eq!(s, StatusCode::OK);
    for p in [
        "/v1/datasets",
        "/v1/datasets/{d}/stats",
        "/v1/datasets/{d}/stats/{stat}",
        "/v1/datasets/{d}/history",
    ] {
        assert!(doc["paths"][p].is_object(), "{p}");
    }

    // Stopped, the cluster gone, restarted on the same cache: the answers are still served;
    // an uncached statistic is 503.
    api.stop().await;
    c.stop().await;
    let api = serve(cluster, config(), &db, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", api.addr);
    let (s, cached) = get(&format!("{base}/v1/datasets/{DS}/stats")).await;
    assert_eq!(s, StatusCode::OK, "{cached}");
    assert_eq!(cached["stats"], all["stats"]);
    let (s, body) = get(&format!("{base}/v1/datasets/{DS}/stats/max")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    api.stop().await;
}

/// `mpcstats api` as a process: it serves at once (503 while the cluster is unreachable,
/// the page regardless) and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_process_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mpcstats");
    let out = std::process::Command::new(bin)
        .args(["init", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(bin)
        .arg("--cluster")
        .arg(dir.path().join("cluster.toml"))
        .args(["api", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let page = loop {
        match reqwest::get(format!("{base}/")).await {
            Ok(r) => break r,
            Err(_) if start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the API never served: {e}"),
        }
    };
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("mpcstats"));
    let (s, body) = get(&format!("{base}/v1/datasets")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        dir.path().join("api.db").exists(),
        "its cache beside the cluster file"
    );
}
