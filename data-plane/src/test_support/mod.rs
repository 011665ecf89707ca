//! Test support shared by the crate's unit tests (compiled only for tests): the recorded provider
//! traffic, the HTTP app in process against simulators, conformance checks of the OpenAI-protocol adapters, and Anthropic request helpers.

pub mod anthropic;
pub mod app;
pub mod conformance;
pub mod fixtures;
