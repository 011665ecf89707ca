//! The admin token on every gRPC call: a constant-time comparison, and a per-address lockout after
//! repeated wrong tokens so the token cannot be guessed at network speed. Failures are logged with
//! the peer's address, never with what it presented.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Wrong tokens one address may present within [`FAILURE_WINDOW`] before it is locked out.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in, and how long a lockout lasts.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it the oldest windows are forgotten first.
const MAX_TRACKED_PEERS: usize = 10_000;

/// Checks `authorization: Bearer <token>` on every call when an admin token is configured.
#[derive(Clone)]
pub struct TokenCheck {
    expected: Option<[u8; 32]>,
    failures: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl TokenCheck {
    /// A check for `token` (`None`: every call is let through).
    pub fn new(token: Option<&str>) -> Self {
        TokenCheck {
            expected: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            failures: Arc::default(),
        }
    }

    /// The interceptor: the request as it came, or `UNAUTHENTICATED` (wrong or missing token) or
    /// `RESOURCE_EXHAUSTED` (this address presented too many wrong tokens lately).
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = self.expected else {
            return Ok(request);
        };
        let peer = request.remote_addr().map(|a| a.ip());
        if let Some(retry) = peer.and_then(|p| self.locked_out(p, Instant::now())) {
            return Err(Status::resource_exhausted(format!(
                "too many wrong admin tokens from this address; retry in {} s",
                retry.as_secs().max(1)
            )));
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| <[u8; 32]>::from(Sha256::digest(t.as_bytes())));
        // Digests of equal length, compared in constant time: the time taken says nothing about
        // where a guess differs.
        let accepted = presented.is_some_and(|digest| bool::from(digest.ct_eq(&expected)));
        if accepted {
            return Ok(request);
        }
        if let Some(peer) = peer {
            self.failed(peer, Instant::now());
        }
        Err(Status::unauthenticated(
            "missing or wrong admin token (authorization: Bearer <token>)",
        ))
    }

    /// How long `peer` stays locked out, if it is.
    fn locked_out(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let f = failures.get(&peer)?;
        let elapsed = now.saturating_duration_since(f.since);
        (f.count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Counts one wrong token from `peer`; logs the first of a window and the lockout.
    fn failed(&self, peer: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED_PEERS && !failures.contains_key(&peer) {
            failures.retain(|_, f| now.saturating_duration_since(f.since) < FAILURE_WINDOW);
            if failures.len() >= MAX_TRACKED_PEERS
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(p, _)| *p)
            {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(peer).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now.saturating_duration_since(entry.since) >= FAILURE_WINDOW {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count += 1;
        if entry.count == 1 {
            tracing::warn!(%peer, "gRPC call with a missing or wrong admin token");
        } else if entry.count == MAX_FAILURES {
            tracing::warn!(
                %peer,
                failures = MAX_FAILURES,
                lockout_secs = FAILURE_WINDOW.as_secs(),
                "too many wrong admin tokens: address locked out"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(token: Option<&str>, peer: &str) -> Request<()> {
        let mut request = Request::new(());
        if let Some(t) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(addr),
            });
        request
    }

    #[test]
    fn right_token_passes_wrong_or_missing_is_unauthenticated() {
        let check = TokenCheck::new(Some("s3cret"));
        assert!(check.check(call(Some("s3cret"), "10.0.0.1:1")).is_ok());
        let wrong = check.check(call(Some("s3cre"), "10.0.0.1:1")).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(!wrong.message().contains("s3cre"));
        let missing = check.check(call(None, "10.0.0.1:1")).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(
            TokenCheck::new(None)
                .check(call(None, "10.0.0.1:1"))
                .is_ok()
        );
    }

    #[test]
    fn repeated_failures_lock_out_that_address_only() {
        let check = TokenCheck::new(Some("s3cret"));
        for _ in 0..MAX_FAILURES {
            let e = check.check(call(Some("guess"), "10.0.0.2:5")).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
        }
        // Even the right token is refused while locked out: guessing cannot go on.
        let locked = check.check(call(Some("s3cret"), "10.0.0.2:6")).unwrap_err();
        assert_eq!(locked.code(), tonic::Code::ResourceExhausted);
        assert!(check.check(call(Some("s3cret"), "10.0.0.3:5")).is_ok());
    }

    #[test]
    fn the_lockout_ends_with_its_window() {
        let check = TokenCheck::new(Some("s3cret"));
        let peer: IpAddr = "10.0.0.4".parse().unwrap();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            check.failed(peer, start);
        }
        assert!(check.locked_out(peer, start).is_some());
        assert!(check.locked_out(peer, start + FAILURE_WINDOW).is_none());
        check.failed(peer, start + FAILURE_WINDOW);
        assert!(check.locked_out(peer, start + FAILURE_WINDOW).is_none());
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let check = TokenCheck::new(Some("s3cret"));
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_PEERS as u32 + 50) {
            check.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(check.failures.lock().unwrap().len() <= MAX_TRACKED_PEERS);
    }
}
