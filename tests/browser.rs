//! The client API's web page in headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs when missing): the page loads, shows the same numbers as the REST API, draws the
//! histogram (one bar per bucket) and the Lorenz curve (one point per point, plus the
//! origin), and screenshots at desktop and phone sizes are written to `target/`
//! (`api-page.png`, `api-page-phone.png`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mpcstats::api::{serve, ApiConfig};
use mpcstats::decimal;
use mpcstats::roles::client::Client;
use mpcstats::roles::demo::LocalCluster;

const DS: &str = "eth_balance";

fn chromium() -> PathBuf {
    let p = std::env::var_os("MPCSTATS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "headless Chromium not found at {} (install Debian's chromium: `apt-get install chromium`, \
         as .ci/run does, or set MPCSTATS_CHROMIUM)",
        p.display()
    );
    p
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its standard output.
async fn headless(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("chromium finished within 120 s")
        .expect("chromium ran");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot_ok(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(png.len() > 10_000, "{} bytes: a blank page?", png.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_rest_numbers_and_draws_both_charts() {
    let chromium_path = chromium();
    assert!(chromium_path.exists());
    let c = LocalCluster::start(None).await.unwrap();
    let client = Client::connect(&c.cluster).await.unwrap();
    let values: Vec<u128> = (1..=40).map(|v| (v * v) as u128 * 10_000_000).collect();
    for v in &values {
        client.share(DS, &decimal::format(*v, 8)).await.unwrap();
    }
    let config = ApiConfig {
        lorenz_points: 8,
        min_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let api = serve(
        c.cluster.clone(),
        config,
        &c.dir.join("api.db"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", api.addr);
    let start = Instant::now();
    let stats: serde_json::Value = loop {
        let r = reqwest::get(format!("{base}/v1/datasets/{DS}/stats"))
            .await
            .unwrap();
        if r.status().is_success() {
            break r.json().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the API never got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let find = |name: &str| {
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stat"] == name)
            .unwrap_or_else(|| panic!("{name} in {stats}"))
            .clone()
    };

    let page = headless(&base, &["--dump-dom".to_string()]).await;
    // What the script rendered (the script's own text names the same classes).
    let start = page.find("<main").expect("a <main> element");
    let dom = &page[start..start + page[start..].find("</main>").expect("</main>")];
    // The numbers: every single-valued statistic as the REST API gives it.
    for name in ["count", "sum", "mean", "stddev", "median", "gini"] {
        let v = find(name)["value"].as_str().unwrap().to_string();
        let cell = format!("data-stat=\"{name}\">{v}<");
        assert!(dom.contains(&cell), "{name} = {v} not on the page");
    }
    assert!(dom.contains(&format!("Gini {}", find("gini")["value"].as_str().unwrap())));
    // The security mode the REST answers report (the default cluster: malicious).
    assert_eq!(find("median")["security"], "malicious");
    assert!(
        dom.contains("data-security=\"malicious\">computed by the parties in malicious mode<"),
        "the page names the security mode"
    );
    // The charts: one bar per histogram bucket, one point per Lorenz point plus the origin.
    let buckets = find("histogram")["parts"].as_array().unwrap().len();
    assert_eq!(dom.matches("class=\"bar\"").count(), buckets, "bars");
    let points = find("lorenz")["parts"].as_array().unwrap().len();
    assert_eq!(points, 8);
    assert_eq!(
        dom.matches("class=\"lorenz-pt\"").count(),
        points + 1,
        "Lorenz points"
    );
    assert!(dom.contains("class=\"curve\"") && dom.contains("class=\"count-line\""));
    // Tables behind the charts.
    assert!(dom.contains("<th>bucket</th>") && dom.contains("<th>share of total</th>"));

    // Screenshots as artifacts, desktop and phone.
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    for (name, size) in [
        ("api-page.png", "1100,1600"),
        ("api-page-phone.png", "390,1800"),
    ] {
        let path = target.join(name);
        let _ = std::fs::remove_file(&path);
        headless(
            &base,
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={size}"),
            ],
        )
        .await;
        screenshot_ok(&path);
    }
    api.stop().await;
    c.stop().await;
}
