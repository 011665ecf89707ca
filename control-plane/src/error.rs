//! The control plane's error boundary: every failure of a write or read, mapped to a precise gRPC status.

use tokenrouter_proto::ValidationError;
use tonic::Status;

use crate::crypto::CryptoError;
use crate::store::StoreError;

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("expected version {expected} but the store is at version {current}")]
    Stale { expected: u64, current: u64 },
    #[error("another control plane wrote at the same time; retry")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<ControlPlaneError> for Status {
    fn from(e: ControlPlaneError) -> Self {
        let message = e.to_string();
        match e {
            ControlPlaneError::Invalid(_) | ControlPlaneError::BadRequest { .. } => {
                Status::invalid_argument(message)
            }
            ControlPlaneError::NotFound { .. } => Status::not_found(message),
            ControlPlaneError::AlreadyExists { .. } => Status::already_exists(message),
            ControlPlaneError::Stale { .. } => Status::failed_precondition(message),
            ControlPlaneError::Contended => Status::aborted(message),
            ControlPlaneError::Store(StoreError::Invalid(_)) => Status::invalid_argument(message),
            ControlPlaneError::Store(StoreError::Full(_)) => Status::resource_exhausted(message),
            ControlPlaneError::Store(StoreError::ReadOnly(_)) => {
                Status::failed_precondition(message)
            }
            ControlPlaneError::Store(_) => Status::unavailable(message),
            ControlPlaneError::Crypto(_) => Status::internal(message),
        }
    }
}
