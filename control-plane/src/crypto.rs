//! The master key that seals provider credentials in the store (the sealing itself is shared with
//! the data plane's snapshot file, in `tokenrouter_proto::sealed`).

pub use tokenrouter_proto::sealed::{CryptoError, MasterKey};
