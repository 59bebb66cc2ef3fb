//! The client API's HTTP routes (axum): JSON for programs, the page for people. Every error
//! is `{"error": "…"}` with its status: 400 bad parameter, 404 unknown dataset or statistic,
//! 409 no closed epoch or below min_cohort, 429 rate or budget, 503 cluster unreachable.
//! Answers carry an ETag that changes exactly when the epoch does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query as UrlQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::{is_unreachable, lock, StatJson, State};
use crate::stats::{Query, Stat};
use crate::wire::QuerySpec;

const PAGE: &str = include_str!("page.html");
const OPENAPI: &str = include_str!("openapi.json");

type Shared = Arc<State>;

/// An error response: status and a message that names what was wrong.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({ "error": self.1.clone() }))).into_response();
        r.extensions_mut().insert(Refusal(self.1));
        r
    }
}

/// An error response's message, kept for the request's log line.
#[derive(Clone)]
struct Refusal(String);

/// Logs one line per request: peer, path (never the query string or a body), status, and
/// for an error response its message as the reason.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let path: String = req.uri().path().chars().take(200).collect();
    let r = next.run(req).await;
    let status = r.status().as_u16();
    match r.extensions().get::<Refusal>() {
        Some(Refusal(reason)) => tracing::info!(
            request = "http",
            peer = %peer,
            path = %path,
            status,
            outcome = "refused",
            reason = %reason,
            "request refused"
        ),
        None => tracing::info!(
            request = "http",
            peer = %peer,
            path = %path,
            status,
            outcome = "admitted",
            "request served"
        ),
    }
    r
}

fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(status, msg.into())
}

/// The status of an error the cluster (or the client) reported.
fn classify(text: &str) -> StatusCode {
    if text.contains("budget") {
        StatusCode::TOO_MANY_REQUESTS
    } else if text.contains("first release needs")
        || text.contains("min_cohort")
        || text.contains("needs at least")
    {
        StatusCode::CONFLICT
    } else if is_unreachable(text) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::BAD_GATEWAY
    }
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/openapi.json", get(openapi))
        .route("/v1/datasets", get(datasets))
        .route("/v1/datasets/{d}/stats", get(all_stats))
        .route("/v1/datasets/{d}/stats/{stat}", get(one_stat))
        .route("/v1/datasets/{d}/history", get(history))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json") })
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A JSON body with an ETag; 304 when the client already has it.
fn tagged<T: Serialize>(headers: &HeaderMap, tag: String, body: &T) -> Response {
    let tag = format!("\"{tag}\"");
    let etag = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"x\""));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), cache]).into_response();
    }
    ([(header::ETAG, etag), cache], Json(body)).into_response()
}

#[derive(Serialize)]
struct DatasetJson {
    name: String,
    description: String,
    /// Decimal places of values and of answers.
    decimals: u32,
    max: String,
    count: u64,
    epoch: u64,
    epoch_size: u64,
    min_cohort: u64,
    privacy: Option<serde_json::Value>,
}

async fn datasets(AxState(state): AxState<Shared>, headers: HeaderMap) -> Response {
    let seen = lock(&state.seen).clone();
    if seen.is_empty() && !*lock(&state.reachable) {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster is unreachable; retry later",
        )
        .into_response();
    }
    let list: Vec<DatasetJson> = state
        .cluster
        .datasets
        .iter()
        .map(|d| {
            let s = seen.get(&d.name).copied().unwrap_or_default();
            DatasetJson {
                name: d.name.clone(),
                description: d.description.clone(),
                decimals: d.scale,
                max: d.max.clone(),
                count: s.count,
                epoch: s.epoch,
                epoch_size: d.epoch_size(),
                min_cohort: d.min_cohort,
                privacy: d
                    .privacy
                    .as_ref()
                    .map(|p| json!({ "epsilon": p.epsilon, "releases": p.releases })),
            }
        })
        .collect();
    let tag: Vec<String> = list
        .iter()
        .map(|d| format!("{}:{}", d.count, d.epoch))
        .collect();
    tagged(
        &headers,
        format!("ds-{}", short_hash(&tag.join(","))),
        &list,
    )
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

fn dataset<'a>(state: &'a State, d: &str) -> Result<&'a crate::config::Dataset, ApiError> {
    state
        .cluster
        .dataset(d)
        .map_err(|e| err(StatusCode::NOT_FOUND, format!("{e:#}")))
}

/// The newest closed epoch the API knows of, or why there is none.
fn newest_epoch(state: &State, ds: &crate::config::Dataset) -> Result<u64, ApiError> {
    let seen = lock(&state.seen).get(&ds.name).copied();
    // Not read from the cluster since a restart: the cache's newest epoch still serves.
    if seen.is_none() {
        if let Ok((epoch, _)) = state.cache.configured(&ds.name) {
            if epoch > 0 {
                return Ok(epoch);
            }
        }
    }
    match seen {
        None if !*lock(&state.reachable) => Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster is unreachable; retry later",
        )),
        None => Err(err(StatusCode::SERVICE_UNAVAILABLE, "not read from the cluster yet; retry in a few seconds")),
        Some(s) if s.epoch == 0 => Err(err(
            StatusCode::CONFLICT,
            format!(
                "dataset {} has {} contributions; its first release needs {} (epoch_size, at least min_cohort = {})",
                ds.name,
                s.count,
                ds.epoch_size(),
                ds.min_cohort
            ),
        )),
        Some(s) => Ok(s.epoch),
    }
}

async fn all_stats(
    AxState(state): AxState<Shared>,
    Path(d): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ds = dataset(&state, &d)?;
    let newest = newest_epoch(&state, ds)?;
    let (epoch, answers) = state
        .cache
        .configured(&ds.name)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cache: {e:#}")))?;
    if epoch == 0 {
        return Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("epoch {newest} is being computed; retry in a few seconds"),
        ));
    }
    let stats: Vec<StatJson> = answers
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    let body = json!({
        "dataset": ds.name,
        "epoch": epoch,
        "count": epoch * ds.epoch_size(),
        "decimals": ds.scale,
        "stats": stats,
    });
    Ok(tagged(&headers, format!("{}-e{epoch}", ds.name), &body))
}

async fn one_stat(
    AxState(state): AxState<Shared>,
    Path((d, stat)): Path<(String, String)>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ds = dataset(&state, &d)?;
    Stat::parse(&stat).map_err(|e| err(StatusCode::NOT_FOUND, format!("{e:#}")))?;
    for k in params.keys() {
        if !["q", "p", "points", "edges", "where", "population"].contains(&k.as_str()) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("unknown parameter {k:?}; known: q, p, points, edges, where, population"),
            ));
        }
    }
    let param = match (params.get("q"), params.get("p"), params.get("points")) {
        (Some(v), None, None) | (None, Some(v), None) | (None, None, Some(v)) => Some(v.clone()),
        (None, None, None) => None,
        _ => return Err(err(StatusCode::BAD_REQUEST, "give one of q, p and points")),
    };
    let spec = QuerySpec {
        dataset: ds.name.clone(),
        stat: stat.clone(),
        population: params.get("population").is_some_and(|v| v == "true"),
        param,
        edges: params
            .get("edges")
            .map(|e| e.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        filter: params.get("where").cloned(),
    };
    let query =
        Query::new(&spec, ds).map_err(|e| err(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let epoch = newest_epoch(&state, ds)?;
    let key = hex::encode(query.key());
    let tag = format!("{}-{}-e{epoch}", ds.name, &key[..16]);
    let cached = state
        .cache
        .get(&ds.name, &key, epoch)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cache: {e:#}")))?;
    if let Some(j) = cached {
        let v: serde_json::Value = serde_json::from_str(&j)
            .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cache: {e}")))?;
        return Ok(tagged(&headers, tag, &v));
    }
    if !state.allow(peer.ip()) {
        return Err(err(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit: at most {} uncached statistics per minute from one address; cached ones are free",
                state.config.per_client_per_minute
            ),
        ));
    }
    let json = state.compute(&spec, false).await.map_err(|e| {
        let text = format!("{e:#}");
        err(classify(&text), text)
    })?;
    let tag = format!("{}-{}-e{}", ds.name, &key[..16], json.epoch);
    Ok(tagged(&headers, tag, &json))
}

async fn history(
    AxState(state): AxState<Shared>,
    Path(d): Path<String>,
) -> Result<Response, ApiError> {
    let ds = dataset(&state, &d)?;
    let h = state
        .cache
        .history(&ds.name)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cache: {e:#}")))?;
    let points: Vec<serde_json::Value> = h
        .into_iter()
        .map(|(at, count)| json!({ "at": at, "count": count }))
        .collect();
    Ok(Json(json!({ "dataset": ds.name, "history": points })).into_response())
}
