//! Which (provider, model) pairs a provider really serves to our account: what its list endpoint
//! said (see `discovery`) and the models it answered "not found / no access" for, excluded for a
//! while. Routing consults it for every candidate it chose itself (auto modes, bare names, kind
//! prefixes, rule targets, fallback chains); a model the client pinned with `provider:model` is
//! always tried, so only such a request can surface the provider's 404.
//!
//! Both maps are copy-on-write behind `ArcSwap`: reads (every routed request) take no lock, writes
//! (a discovery round, an upstream 404) are rare.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use tokio::time::Instant;

/// How long a (provider, model) that answered "model not found" is left out of routing.
pub const MISSING_FOR: Duration = Duration::from_secs(600);

/// What one provider's list endpoint returned.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Identifies the provider settings the list was fetched with (kind, base URL, credentials).
    pub fingerprint: u64,
    /// Model ids, plus each dated id's undated alias (`claude-sonnet-4-5-20250929` also gives
    /// `claude-sonnet-4-5`: Anthropic lists only dated ids but accepts the aliases).
    pub models: HashSet<String>,
    pub fetched_at: Instant,
}

impl Listing {
    /// A listing of `ids` (as the provider spelled them, Gemini's `models/` prefix removed).
    pub fn new(fingerprint: u64, ids: impl IntoIterator<Item = String>) -> Listing {
        let mut models = HashSet::new();
        for id in ids {
            if let Some(alias) = undated(&id) {
                models.insert(alias.to_string());
            }
            models.insert(id);
        }
        Listing {
            fingerprint,
            models,
            fetched_at: Instant::now(),
        }
    }
}

/// `name` without a trailing `-YYYYMMDD`, when it has one.
fn undated(id: &str) -> Option<&str> {
    let (base, date) = id.rsplit_once('-')?;
    (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty())
        .then_some(base)
}

/// The data plane's knowledge of what providers serve.
#[derive(Debug, Default)]
pub struct Availability {
    listings: ArcSwap<HashMap<String, Arc<Listing>>>,
    missing: ArcSwap<HashMap<(String, String), Instant>>,
}

/// A consistent read of [`Availability`] for one routing decision.
pub struct View {
    listings: Guard<Arc<HashMap<String, Arc<Listing>>>>,
    missing: Guard<Arc<HashMap<(String, String), Instant>>>,
}

impl View {
    /// Whether routing may choose `model` on `provider`: not answered "not found" recently, and
    /// listed by the provider when its list is known.
    pub fn serves(&self, provider: &str, model: &str) -> bool {
        if !self.missing.is_empty()
            && self
                .missing
                .get(&(provider.to_string(), model.to_string()))
                .is_some_and(|until| Instant::now() < *until)
        {
            return false;
        }
        self.listings
            .get(provider)
            .is_none_or(|l| l.models.contains(model))
    }
}

impl Availability {
    pub fn view(&self) -> View {
        View {
            listings: self.listings.load(),
            missing: self.missing.load(),
        }
    }

    /// The provider answered that `model` does not exist or our account cannot use it.
    pub fn mark_missing(&self, provider: &str, model: &str) {
        let until = Instant::now() + MISSING_FOR;
        self.missing.rcu(|current| {
            let now = Instant::now();
            let mut next: HashMap<(String, String), Instant> = current
                .iter()
                .filter(|(_, t)| **t > now)
                .map(|(k, t)| (k.clone(), *t))
                .collect();
            next.insert((provider.to_string(), model.to_string()), until);
            next
        });
        tracing::info!(
            provider,
            model,
            "provider does not serve this model; left out of routing for a while"
        );
    }

    /// The listing of `provider`, if one was fetched.
    pub fn listing(&self, provider: &str) -> Option<Arc<Listing>> {
        self.listings.load().get(provider).cloned()
    }

    /// Stores (or, with `None`, forgets) the listing of `provider`.
    pub fn set_listing(&self, provider: &str, listing: Option<Listing>) {
        let listing = listing.map(Arc::new);
        self.listings.rcu(|current| {
            let mut next = HashMap::clone(current);
            match &listing {
                Some(l) => next.insert(provider.to_string(), l.clone()),
                None => next.remove(provider),
            };
            next
        });
    }

    /// Forgets listings of providers no longer configured.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if self.listings.load().keys().all(|p| keep(p)) {
            return;
        }
        self.listings.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.retain(|p, _| keep(p));
            next
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_ids_also_list_their_alias() {
        let l = Listing::new(
            1,
            ["claude-sonnet-4-5-20250929".to_string(), "gpt-4o".into()],
        );
        assert!(l.models.contains("claude-sonnet-4-5"));
        assert!(l.models.contains("claude-sonnet-4-5-20250929"));
        assert!(l.models.contains("gpt-4o"));
        assert!(!l.models.contains("claude-sonnet-4"));
        assert_eq!(undated("x-2025"), None);
        assert_eq!(undated("-20250101"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn listed_models_are_served_and_missing_ones_return_after_a_while() {
        let a = Availability::default();
        assert!(
            a.view().serves("p", "anything"),
            "unknown list: benefit of the doubt"
        );
        a.set_listing("p", Some(Listing::new(1, ["m1".to_string()])));
        assert!(a.view().serves("p", "m1"));
        assert!(!a.view().serves("p", "m2"));
        assert!(a.view().serves("other", "m2"));
        a.mark_missing("p", "m1");
        assert!(!a.view().serves("p", "m1"));
        tokio::time::advance(MISSING_FOR + Duration::from_secs(1)).await;
        assert!(a.view().serves("p", "m1"));
        a.retain(|p| p != "p");
        assert!(a.view().serves("p", "m2"));
        assert!(a.listing("p").is_none());
    }
}
