//! The gRPC contract shared by both planes (generated from `proto/`), the snapshot checks both run,
//! the spend-control arithmetic both use (`limits`), and encryption at rest (`sealed`).

pub mod base_url;
pub mod limits;
pub mod sealed;
pub mod validate;

/// Generated messages and services of package `tokenrouter.v1`.
pub mod v1 {
    #![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
    tonic::include_proto!("tokenrouter.v1");
}

/// Encoded `FileDescriptorSet` of every `.proto` file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("tokenrouter_descriptor");

pub use base_url::normalize_base_url;
pub use validate::{ValidationError, content_hash, validate_snapshot};
