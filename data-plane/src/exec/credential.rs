//! Credential choice: the first credential the live signals admit (not cooling down after a 429,
//! breaker not open), starting at a random place so several credentials share the load.

use crate::error::UpstreamError;
use crate::routing::plan::Attempt;
use crate::signals::{self, Admission};
use crate::snapshot::policy::MAX_RETRY_AFTER_WAIT;
use crate::snapshot::runtime::CredentialRt;
use crate::state::DataPlaneState;

/// The credential to use, `Ok(None)` when the provider needs none. The `last` attempt of a plan may
/// wait out a short cool-down (a provider's `Retry-After`) rather than fail at once.
pub(super) async fn pick<'a>(
    state: &DataPlaneState,
    attempt: &'a Attempt,
    last: bool,
) -> Result<Option<&'a CredentialRt>, UpstreamError> {
    let creds = &attempt.provider.credentials;
    if creds.is_empty() {
        return Ok(None);
    }
    let key = |c: &CredentialRt| signals::key(&attempt.provider.name, &attempt.model, &c.name);
    let start = rand::random_range(0..creds.len());
    for round in 0..2 {
        for offset in 0..creds.len() {
            let c = &creds[(start + offset) % creds.len()];
            if state.signals.admit(&key(c)) != Admission::Refused {
                return Ok(Some(c));
            }
        }
        let wait = creds
            .iter()
            .filter_map(|c| state.signals.cooling_for(&key(c)))
            .min();
        match wait {
            Some(w) if last && round == 0 && w <= MAX_RETRY_AFTER_WAIT => {
                tokio::time::sleep(w).await
            }
            _ => break,
        }
    }
    Err(UpstreamError::Unavailable(
        "is cooling down after rate limits or has an open circuit breaker".into(),
    ))
}
