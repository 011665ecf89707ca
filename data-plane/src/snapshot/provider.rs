//! One provider as the data plane calls it (compiled from a snapshot: protocol, parsed URL,
//! credentials ready to send, timeouts, pooled client) and a (provider, model) target. Leaf-like:
//! the compiled config, the fallback policies and the upstream client all use it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};

use crate::providers::Protocol;

/// A provider secret; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One credential of a provider, ready to be sent.
#[derive(Debug, Clone)]
pub struct CredentialRt {
    pub name: String,
    /// The credential header; the value is marked sensitive so it never shows in debug output.
    pub header: (HeaderName, HeaderValue),
    /// Kept only to scrub it from provider error text.
    pub secret: Secret,
}

/// One provider, ready to be called.
#[derive(Debug)]
pub struct ProviderRt {
    pub name: String,
    pub kind: String,
    pub protocol: Protocol,
    /// The base URL without a trailing slash; adapters append their paths.
    pub base_url: String,
    /// The host and port of `base_url` (spans' `server.address` / `server.port`), parsed once.
    pub server: Option<(String, u16)>,
    /// `base_url` + the protocol's fixed path, parsed once (None for Gemini, whose path names the model).
    pub fixed_uri: Option<http::Uri>,
    /// Models it serves: its own list, or every catalog model of its kind when the list is empty.
    pub models: Vec<String>,
    /// Credentials in name order; requests spread over them and skip those cooling down.
    pub credentials: Vec<CredentialRt>,
    pub timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub client: crate::upstream::clients::HttpClient,
}

/// A provider and the model to ask it for (empty: the requested model).
#[derive(Debug, Clone)]
pub struct TargetRt {
    pub provider: Arc<ProviderRt>,
    pub model: String,
}
