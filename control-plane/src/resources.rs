//! The five resource kinds behind one trait, so create/update/delete/list are written once.

use prost::Message;
use tokenrouter_proto::v1::{
    ApiKey, Credential, FallbackPolicy, FirewallRule, ModelEntry, Provider, RoutingRule, Snapshot,
};
use tokenrouter_proto::{ValidationError, normalize_base_url};

use crate::crypto::{CryptoError, MasterKey};
use crate::store::Row;

/// A named configuration resource stored as one row and carried in the snapshot.
pub trait Resource: Message + Default + Clone + Send + Sync + 'static {
    /// The store's `kind` column, also used in messages ("provider").
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn list(s: &Snapshot) -> &Vec<Self>;
    fn list_mut(s: &mut Snapshot) -> &mut Vec<Self>;
    /// The resource as it is stored (credentials encrypt their secret).
    fn to_row(&self, _key: &MasterKey) -> Row {
        Row {
            kind: Self::KIND.into(),
            name: self.name().into(),
            body: self.encode_to_vec(),
        }
    }
    /// The resource from its stored row.
    fn from_row(body: &[u8], _key: &MasterKey) -> Result<Self, CryptoError> {
        Self::decode(body).map_err(|_| CryptoError::Decrypt)
    }
    /// The resource as admin reads show it (credentials without their secret).
    fn redacted(&self) -> Self {
        self.clone()
    }
    /// The resource in the canonical form it is stored in (providers: the base URL through
    /// [`normalize_base_url`]). Run once on every write, so reads show what is served.
    fn normalized(self) -> Result<Self, ValidationError> {
        Ok(self)
    }
}

macro_rules! resource {
    ($ty:ident, $kind:literal, $field:ident) => {
        impl Resource for $ty {
            const KIND: &'static str = $kind;
            fn name(&self) -> &str {
                &self.name
            }
            fn list(s: &Snapshot) -> &Vec<Self> {
                &s.$field
            }
            fn list_mut(s: &mut Snapshot) -> &mut Vec<Self> {
                &mut s.$field
            }
            resource!(@extra $ty);
        }
    };
    (@extra Credential) => {
        fn to_row(&self, key: &MasterKey) -> Row {
            let sealed = Credential { secret: key.encrypt(&self.secret), ..self.clone() };
            Row { kind: Self::KIND.into(), name: self.name.clone(), body: sealed.encode_to_vec() }
        }
        fn from_row(body: &[u8], key: &MasterKey) -> Result<Self, CryptoError> {
            let sealed = Credential::decode(body).map_err(|_| CryptoError::Decrypt)?;
            let secret = key.decrypt(&sealed.secret)?;
            Ok(Credential { secret, ..sealed })
        }
        fn redacted(&self) -> Self {
            Credential { secret: String::new(), ..self.clone() }
        }
    };
    (@extra Provider) => {
        fn normalized(self) -> Result<Self, ValidationError> {
            let field = format!("providers[{}].base_url", self.name);
            let base_url = normalize_base_url(&field, &self.kind, &self.base_url)?;
            Ok(Provider { base_url, ..self })
        }
    };
    (@extra $other:ident) => {};
}

resource!(Provider, "provider", providers);
resource!(Credential, "credential", credentials);
resource!(ApiKey, "api_key", api_keys);
resource!(RoutingRule, "routing_rule", routing_rules);
resource!(FirewallRule, "firewall_rule", firewall_rules);
resource!(FallbackPolicy, "fallback_policy", fallback_policies);
resource!(ModelEntry, "model", models);

/// Builds the configuration part of a snapshot from stored rows; unknown kinds are ignored so an
/// older binary can read a newer store.
pub fn snapshot_from_rows(rows: &[Row], key: &MasterKey) -> Result<Snapshot, CryptoError> {
    let mut s = Snapshot::default();
    for row in rows {
        match row.kind.as_str() {
            Provider::KIND => s.providers.push(Provider::from_row(&row.body, key)?),
            Credential::KIND => s.credentials.push(Credential::from_row(&row.body, key)?),
            ApiKey::KIND => s.api_keys.push(ApiKey::from_row(&row.body, key)?),
            RoutingRule::KIND => s.routing_rules.push(RoutingRule::from_row(&row.body, key)?),
            FirewallRule::KIND => s
                .firewall_rules
                .push(FirewallRule::from_row(&row.body, key)?),
            FallbackPolicy::KIND => s
                .fallback_policies
                .push(FallbackPolicy::from_row(&row.body, key)?),
            _ => {}
        }
    }
    Ok(s)
}

/// The snapshot as admins may read it: every credential secret blanked.
pub fn redact(s: &Snapshot) -> Snapshot {
    Snapshot {
        credentials: s.credentials.iter().map(Resource::redacted).collect(),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_stored_with_the_normalised_base_url() {
        let provider = Provider {
            name: "claude".into(),
            kind: "anthropic".into(),
            base_url: "https://api.anthropic.com/".into(),
            models: vec!["claude-sonnet-4-5".into()],
            ..Default::default()
        };
        let normalized = provider.clone().normalized().unwrap();
        assert_eq!(normalized.base_url, "https://api.anthropic.com/v1");
        assert_eq!(normalized.models, provider.models);

        let bad = Provider {
            base_url: "ftp://h".into(),
            ..provider
        };
        let err = bad.normalized().unwrap_err();
        assert_eq!(
            err.to_string(),
            "providers[claude].base_url: scheme must be http or https"
        );
    }

    #[test]
    fn other_resources_are_stored_as_given() {
        let key = ApiKey {
            name: "k".into(),
            ..Default::default()
        };
        assert_eq!(key.clone().normalized().unwrap(), key);
    }
}
