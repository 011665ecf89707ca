//! End-to-end tests: real control planes, data planes and provider simulators on 127.0.0.1:0,
//! talking real gRPC and HTTP. One binary for the whole suite.

mod admin;
mod base_urls;
mod body_log;
mod canary;
mod chat;
mod dashboard;
mod discovery;
mod embeddings;
mod firewall;
mod hardening;
mod keys;
mod limits;
mod node;
mod python;
mod replay;
mod resilience;
mod responses;
mod routing;
mod scale_out;
mod setup;
mod sync;
mod telemetry;
mod traces;
