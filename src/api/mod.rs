//! The client API (`mpcstats api`): a long-running data consumer that keeps the latest answer
//! of each configured statistic per dataset for the newest closed epoch, serves them over
//! plain HTTP as JSON (`rest`) and as a web page with charts (`page.html`, served from the
//! binary), and remembers them across restarts (`cache`).
//!
//! It talks QUIC to the cluster like any consumer: it holds result secrets for its own
//! queries and sees only released statistics. It asks the cluster at most once per
//! `min_interval` for new epochs; a statistic nobody configured is computed once per epoch on
//! first request, within a per-client rate limit and the dataset's query budget.

pub mod cache;
mod rest;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::sync::Mutex as AsyncMutex;
use tracing::{info, warn};

use crate::config::{Cluster, Dataset};
use crate::roles::client::Client;
use crate::stats::answer::Answer;
use crate::stats::Query;
use crate::wire::QuerySpec;
use cache::Cache;

/// What the API computes for every dataset and how often it asks the cluster.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Statistics without parameters, e.g. count, mean, median, stddev, gini.
    pub stats: Vec<String>,
    /// Quantiles q in [0, 1].
    pub quantiles: Vec<String>,
    /// Points of the Lorenz curve (0: none).
    pub lorenz_points: u32,
    /// Histogram edges in each dataset's units; empty: powers of ten up to the maximum.
    pub edges: Vec<String>,
    /// Least time between two refreshes from the cluster.
    pub min_interval: Duration,
    /// Uncached statistics one client address may have computed per minute.
    pub per_client_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            stats: ["count", "sum", "mean", "stddev", "median", "gini"]
                .map(String::from)
                .to_vec(),
            quantiles: vec!["0.25".into(), "0.75".into()],
            lorenz_points: 10,
            edges: Vec::new(),
            min_interval: Duration::from_secs(30),
            per_client_per_minute: 30,
        }
    }
}

impl ApiConfig {
    /// The configured queries of `ds`.
    pub fn specs(&self, ds: &Dataset) -> Vec<QuerySpec> {
        let q = |s: &str| QuerySpec::new(&ds.name, s);
        let mut out: Vec<QuerySpec> = self.stats.iter().map(|s| q(s)).collect();
        for p in &self.quantiles {
            out.push(QuerySpec {
                param: Some(p.clone()),
                ..q("quantile")
            });
        }
        out.push(QuerySpec {
            edges: if self.edges.is_empty() {
                default_edges(ds)
            } else {
                self.edges.clone()
            },
            ..q("histogram")
        });
        if self.lorenz_points >= 2 {
            out.push(QuerySpec {
                param: Some(self.lorenz_points.to_string()),
                ..q("lorenz")
            });
        }
        out
    }
}

/// Powers of ten from 1 up to the dataset's maximum (at least one edge).
pub fn default_edges(ds: &Dataset) -> Vec<String> {
    let max = ds.max_scaled().unwrap_or(1) / 10u128.pow(ds.scale);
    let mut out = vec!["1".to_string()];
    let mut e: u128 = 10;
    while e <= max && out.len() < crate::stats::MAX_EDGES {
        out.push(e.to_string());
        e *= 10;
    }
    out
}

/// One cached answer as the API serves it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StatJson {
    pub dataset: String,
    pub stat: String,
    /// The request's parameters: q, p, points, edges, where (those given).
    pub params: HashMap<String, String>,
    /// The answer as decimal text in the dataset's units (histograms and Lorenz curves as
    /// one line; see `parts`).
    pub value: String,
    /// Buckets of a histogram, points of a Lorenz curve.
    pub parts: Vec<Part>,
    /// Decimal places of the dataset's values.
    pub decimals: u32,
    /// Contributions the answer is computed over.
    pub count: u64,
    pub epoch: u64,
    /// Unix time the API computed it.
    pub computed_at: i64,
    /// Under differential privacy: the dataset's budget after this answer.
    pub privacy: Option<PrivacyJson>,
    /// The parties' security mode: "malicious" or "semi-honest".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<String>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Part {
    pub label: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PrivacyJson {
    pub epsilon_spent: String,
    pub epsilon_left: String,
    pub releases_used: u32,
    pub releases: u32,
}

fn params_of(spec: &QuerySpec) -> HashMap<String, String> {
    let mut p = HashMap::new();
    if let Some(v) = &spec.param {
        let name = match spec.stat.as_str() {
            "quantile" => "q",
            "percentile" => "p",
            _ => "points",
        };
        p.insert(name.to_string(), v.clone());
    }
    if !spec.edges.is_empty() {
        p.insert("edges".into(), spec.edges.join(","));
    }
    if let Some(f) = &spec.filter {
        p.insert("where".into(), f.clone());
    }
    if spec.population {
        p.insert("population".into(), "true".into());
    }
    p
}

fn to_json(spec: &QuerySpec, ds: &Dataset, a: &Answer) -> StatJson {
    StatJson {
        dataset: ds.name.clone(),
        stat: spec.stat.clone(),
        params: params_of(spec),
        value: a.text.clone(),
        parts: a
            .parts()
            .into_iter()
            .map(|(label, value)| Part { label, value })
            .collect(),
        decimals: ds.scale,
        count: a.count,
        epoch: a.epoch,
        computed_at: crate::store::now_secs(),
        privacy: a.spent.as_ref().map(|s| PrivacyJson {
            epsilon_spent: s.epsilon_spent.clone(),
            epsilon_left: s.epsilon_left.clone(),
            releases_used: s.used,
            releases: s.releases,
        }),
        security: a.security.map(|s| s.name().to_string()),
    }
}

/// A dataset's state as the API last saw it.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    count: u64,
    epoch: u64,
}

pub(crate) struct State {
    cluster: Cluster,
    config: ApiConfig,
    cache: Cache,
    client: AsyncMutex<Option<Arc<Client>>>,
    seen: Mutex<HashMap<String, Seen>>,
    reachable: Mutex<bool>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    /// A connected client, connecting again after a failure.
    async fn client(&self) -> Result<Arc<Client>> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(Client::connect(&self.cluster).await?);
        *guard = Some(c.clone());
        Ok(c)
    }

    async fn drop_client(&self) {
        *self.client.lock().await = None;
    }

    /// Whether client `ip` may have one more uncached statistic computed now.
    fn allow(&self, ip: IpAddr) -> bool {
        let per_minute = f64::from(self.config.per_client_per_minute.max(1));
        let mut b = lock(&self.buckets);
        if b.len() > 100_000 {
            b.retain(|_, (_, t)| t.elapsed() < Duration::from_secs(120));
        }
        let (tokens, last) = b.entry(ip).or_insert((per_minute, Instant::now()));
        *tokens = (*tokens + last.elapsed().as_secs_f64() * per_minute / 60.0).min(per_minute);
        *last = Instant::now();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Computes `spec` over the newest closed epoch through the cluster and caches it.
    async fn compute(&self, spec: &QuerySpec, configured: bool) -> Result<StatJson> {
        let (key, json) = self.fetch(spec).await?;
        self.store(&key, &json, configured)?;
        Ok(json)
    }

    fn store(&self, key: &str, json: &StatJson, configured: bool) -> Result<()> {
        self.cache.put(
            &json.dataset,
            key,
            json.epoch,
            &serde_json::to_string(json)?,
            configured,
        )
    }

    /// Computes `spec` through the cluster: its cache key and its answer.
    async fn fetch(&self, spec: &QuerySpec) -> Result<(String, StatJson)> {
        let ds = self.cluster.dataset(&spec.dataset)?;
        let query = Query::new(spec, ds)?;
        let client = self.client().await?;
        let answer = match client.query(spec).await {
            Ok(a) => a,
            Err(e) => {
                let text = format!("{e:#}");
                if is_unreachable(&text) {
                    self.drop_client().await;
                }
                return Err(e);
            }
        };
        Ok((hex::encode(query.key()), to_json(spec, ds, &answer)))
    }

    /// One refresh: every dataset's count, and the configured statistics of any newly closed
    /// epoch.
    async fn refresh(&self) {
        let report = match self.client().await {
            Ok(c) => c.status().await,
            Err(e) => Err(e),
        };
        let report = match report {
            Ok(r) => {
                *lock(&self.reachable) = true;
                r
            }
            Err(e) => {
                *lock(&self.reachable) = false;
                warn!("the cluster is unreachable: {e:#}");
                self.drop_client().await;
                return;
            }
        };
        for (name, count) in report.datasets {
            let Ok(ds) = self.cluster.dataset(&name) else {
                continue;
            };
            let epoch = ds.closed_epoch(count);
            let _ = self.cache.record_count(&name, count);
            let cached = self.cache.configured(&name).map(|c| c.0).unwrap_or(0);
            lock(&self.seen).insert(name.clone(), Seen { count, epoch });
            if epoch == 0 || cached >= epoch {
                continue;
            }
            info!("{name}: epoch {epoch} closed; computing its statistics");
            // All of an epoch's answers appear at once: none is stored before all are in.
            let mut done = Vec::new();
            for spec in self.config.specs(ds) {
                match self.fetch(&spec).await {
                    Ok(r) => done.push(r),
                    Err(e) => warn!("{name}: {} not available: {e:#}", spec.stat),
                }
            }
            let texts: Vec<(String, String, &StatJson)> = done
                .iter()
                .filter_map(|(key, json)| {
                    serde_json::to_string(json)
                        .ok()
                        .map(|t| (key.clone(), t, json))
                })
                .collect();
            let rows: Vec<(&str, &str, u64, &str)> = texts
                .iter()
                .map(|(k, t, j)| (j.dataset.as_str(), k.as_str(), j.epoch, t.as_str()))
                .collect();
            if let Err(e) = self.cache.put_configured(&rows) {
                warn!("{name}: cannot cache epoch {epoch}'s statistics: {e:#}");
            }
        }
    }
}

/// Whether an error means the cluster could not be reached (rather than a refusal).
pub(crate) fn is_unreachable(text: &str) -> bool {
    [
        "cannot reach",
        "unreachable",
        "no answer within",
        "connection",
        "timed out",
    ]
    .iter()
    .any(|n| text.contains(n))
}

/// A running client API.
pub struct ApiServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    /// Stops serving: no new connection is taken, open requests finish for up to
    /// [`DRAIN_TIME`](crate::roles::drain::DRAIN_TIME) and are then dropped; the refresh
    /// loop stops at once.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let mut tasks = self.tasks.drain(..);
        if let Some(refresher) = tasks.next() {
            refresher.abort();
            let _ = refresher.await;
        }
        for mut t in tasks {
            let bound = crate::roles::drain::DRAIN_TIME;
            if tokio::time::timeout(bound, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
    }
}

/// Starts the API on `listen` with its cache in `db`.
pub async fn serve(
    cluster: Cluster,
    config: ApiConfig,
    db: &std::path::Path,
    listen: SocketAddr,
) -> Result<ApiServer> {
    let cache = Cache::open(db)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("the API cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(State {
        cluster,
        config,
        cache,
        client: AsyncMutex::new(None),
        seen: Mutex::new(HashMap::new()),
        reachable: Mutex::new(false),
        buckets: Mutex::new(HashMap::new()),
    });
    let refresher = tokio::spawn({
        let state = state.clone();
        async move {
            loop {
                state.refresh().await;
                tokio::time::sleep(state.config.min_interval).await;
            }
        }
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = rest::router(state);
    let server = tokio::spawn(async move {
        let r = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        })
        .await;
        if let Err(e) = r {
            warn!("the API server stopped: {e}");
        }
    });
    Ok(ApiServer {
        addr,
        stop: Some(tx),
        tasks: vec![refresher, server],
    })
}
