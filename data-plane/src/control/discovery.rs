//! Model discovery: each data plane asks every configured provider which models our account can
//! use, from the provider's own list endpoint (OpenAI, Mistral, DeepSeek and compatible servers
//! `GET {base}/models`; Anthropic `GET /v1/models`; Gemini `models.list`), when a snapshot changes a
//! provider and every [`REFRESH`] after, and keeps the answer in [`Availability`].
//!
//! The data plane fetches for itself rather than receiving the lists in the snapshot: it already
//! holds the credentials and the network path to the providers (a control plane may have no egress
//! at all), a list is a property of the account as seen from where requests leave, and no new
//! snapshot version is written for what is a cache. A provider whose list endpoint fails keeps
//! today's behaviour (every configured model is a candidate) until a later round succeeds.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;

use crate::providers::Protocol;
use crate::routing::availability::Listing;
use crate::snapshot::runtime::ProviderRt;
use crate::state::DataPlaneState;

/// How often a provider's list is fetched again.
pub const REFRESH: Duration = Duration::from_secs(600);
/// After a failed fetch, how long until the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);
/// Time for one list request.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest list body read.
const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;
/// Pages followed for paginated lists (Anthropic, Gemini).
const MAX_PAGES: usize = 10;

/// Keeps every provider's listing fresh until the task is dropped.
pub async fn run(state: Arc<DataPlaneState>) {
    let mut applied = state.snapshots_applied();
    // When each provider's fetch was last tried, and with which settings.
    let mut tried: HashMap<String, (u64, tokio::time::Instant)> = HashMap::new();
    loop {
        refresh(&state, &mut tried).await;
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RETRY_AFTER_FAILURE) => {}
        }
    }
}

/// One round: fetches the lists that are missing, stale or made with other settings.
async fn refresh(state: &DataPlaneState, tried: &mut HashMap<String, (u64, tokio::time::Instant)>) {
    let rt = state.runtime();
    state.availability.retain(|p| rt.providers.contains_key(p));
    tried.retain(|p, _| rt.providers.contains_key(p));
    let due: Vec<(Arc<ProviderRt>, u64)> = rt
        .providers
        .values()
        .filter_map(|p| {
            let fp = fingerprint(p);
            let listing = state.availability.listing(&p.name);
            if listing.as_ref().is_some_and(|l| l.fingerprint != fp) {
                state.availability.set_listing(&p.name, None);
            }
            let fresh =
                listing.is_some_and(|l| l.fingerprint == fp && l.fetched_at.elapsed() < REFRESH);
            let recently_tried = tried
                .get(&p.name)
                .is_some_and(|(f, at)| *f == fp && at.elapsed() < RETRY_AFTER_FAILURE);
            (!fresh && !recently_tried).then(|| (p.clone(), fp))
        })
        .collect();
    let fetches = due
        .iter()
        .map(|(p, fp)| async move { (p, *fp, fetch(p).await) });
    for (provider, fp, result) in futures::future::join_all(fetches).await {
        tried.insert(provider.name.clone(), (fp, tokio::time::Instant::now()));
        match result {
            Ok(ids) => {
                tracing::debug!(provider = %provider.name, models = ids.len(), "discovered the provider's models");
                state
                    .availability
                    .set_listing(&provider.name, Some(Listing::new(fp, ids)));
            }
            Err(why) => {
                tracing::info!(provider = %provider.name, %why, "cannot list the provider's models; every configured model stays a candidate");
            }
        }
    }
}

/// What the list depends on: kind, base URL and the credentials (a different key may be a
/// different account). Only a hash is kept.
fn fingerprint(p: &ProviderRt) -> u64 {
    let mut h = DefaultHasher::new();
    p.kind.hash(&mut h);
    p.base_url.hash(&mut h);
    for c in &p.credentials {
        c.name.hash(&mut h);
        c.secret.0.hash(&mut h);
    }
    h.finish()
}

/// Every model id the provider lists, following pages.
async fn fetch(p: &ProviderRt) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let body = get(p, &list_path(p.protocol, page.as_deref())).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| "the list is not JSON".to_string())?;
        let (more, next) = parse_page(p.protocol, &value)?;
        ids.extend(more);
        match next {
            Some(n) => page = Some(n),
            None => return Ok(ids),
        }
    }
    Ok(ids)
}

/// The list path below the base URL, for the page after `cursor`.
fn list_path(protocol: Protocol, cursor: Option<&str>) -> String {
    let cursor: String = cursor
        .map(|c| url::form_urlencoded::byte_serialize(c.as_bytes()).collect())
        .unwrap_or_default();
    match (protocol, cursor.is_empty()) {
        (Protocol::Anthropic, true) => "/models?limit=1000".into(),
        (Protocol::Anthropic, false) => format!("/models?limit=1000&after_id={cursor}"),
        (Protocol::Gemini, true) => "/models?pageSize=1000".into(),
        (Protocol::Gemini, false) => format!("/models?pageSize=1000&pageToken={cursor}"),
        _ => "/models".into(),
    }
}

/// The ids of one page and the cursor of the next, if any.
fn parse_page(protocol: Protocol, v: &Value) -> Result<(Vec<String>, Option<String>), String> {
    match protocol {
        Protocol::Gemini => {
            let models = v["models"].as_array().ok_or("the list has no `models`")?;
            let ids = models
                .iter()
                .filter(|m| {
                    m["supportedGenerationMethods"]
                        .as_array()
                        .is_none_or(|ms| ms.iter().any(|x| x == "generateContent"))
                })
                .filter_map(|m| m["name"].as_str())
                .map(|n| n.strip_prefix("models/").unwrap_or(n).to_string())
                .collect();
            let next = v["nextPageToken"].as_str().filter(|t| !t.is_empty());
            Ok((ids, next.map(str::to_string)))
        }
        _ => {
            let data = v["data"].as_array().ok_or("the list has no `data`")?;
            let ids: Vec<String> = data
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect();
            let next = (protocol == Protocol::Anthropic && v["has_more"] == Value::Bool(true))
                .then(|| v["last_id"].as_str().map(str::to_string))
                .flatten();
            Ok((ids, next))
        }
    }
}

/// `GET {base}{path}` with the provider's first credential; the body of a 2xx answer.
async fn get(p: &ProviderRt, path: &str) -> Result<Bytes, String> {
    let uri = crate::upstream::uri::upstream_uri(&p.base_url, path).ok_or("invalid URL")?;
    let mut request = http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|_| "invalid URL".to_string())?;
    let headers = request.headers_mut();
    if let Some(c) = p.credentials.first() {
        headers.insert(c.header.0.clone(), c.header.1.clone());
    }
    if p.protocol == Protocol::Anthropic {
        headers.insert(
            "anthropic-version",
            http::HeaderValue::from_static("2023-06-01"),
        );
    }
    let response = tokio::time::timeout(LIST_TIMEOUT, p.client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|_| "request failed".to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let body = Limited::new(response.into_body(), MAX_LIST_BYTES);
    tokio::time::timeout(LIST_TIMEOUT, body.collect())
        .await
        .map_err(|_| "timed out".to_string())?
        .map(|b| b.to_bytes())
        .map_err(|_| "could not read the list".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_of_each_protocol() {
        let openai = json!({"object": "list", "data": [{"id": "gpt-4o"}, {"id": "o3-mini"}]});
        assert_eq!(
            parse_page(Protocol::OpenAi, &openai).unwrap(),
            (vec!["gpt-4o".to_string(), "o3-mini".into()], None)
        );
        let anthropic = json!({"data": [{"type": "model", "id": "claude-sonnet-4-5-20250929"}],
            "has_more": true, "first_id": "claude-sonnet-4-5-20250929", "last_id": "claude-sonnet-4-5-20250929"});
        let (ids, next) = parse_page(Protocol::Anthropic, &anthropic).unwrap();
        assert_eq!(ids, vec!["claude-sonnet-4-5-20250929".to_string()]);
        assert_eq!(next.as_deref(), Some("claude-sonnet-4-5-20250929"));
        let gemini = json!({"models": [
            {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}],
            "nextPageToken": "abc"});
        assert_eq!(
            parse_page(Protocol::Gemini, &gemini).unwrap(),
            (vec!["gemini-2.5-flash".to_string()], Some("abc".into()))
        );
        assert!(parse_page(Protocol::Mistral, &json!({"detail": "Not Found"})).is_err());
    }

    #[test]
    fn list_paths_follow_each_providers_pagination() {
        assert_eq!(list_path(Protocol::OpenAi, None), "/models");
        assert_eq!(
            list_path(Protocol::Anthropic, Some("claude-x")),
            "/models?limit=1000&after_id=claude-x"
        );
        assert_eq!(
            list_path(Protocol::Gemini, Some("a/b=")),
            "/models?pageSize=1000&pageToken=a%2Fb%3D"
        );
    }
}
