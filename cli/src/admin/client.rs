//! Connecting to the control plane with the admin token, and turning gRPC failures into one-line errors.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokenrouter_proto::v1::WriteResponse;
use tokenrouter_proto::v1::admin_client::AdminClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use super::Connection;
use super::output::{Action, Printer};

/// How long to wait for the TCP (and HTTP/2) connection to the control plane.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for one admin call; writes validate and commit a snapshot, which is quick.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin client every subcommand uses.
pub(super) type Client = AdminClient<InterceptedService<Channel, AuthInterceptor>>;

/// Adds `authorization: Bearer <token>` to every call when a token is configured.
#[derive(Clone)]
pub(super) struct AuthInterceptor {
    header: Option<AsciiMetadataValue>,
}

impl AuthInterceptor {
    /// Validates the token once, up front, rather than failing on every call.
    pub(super) fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let header = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => {
                // The error text would not include the token, but say why without echoing it anyway.
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                        anyhow!("the admin token contains characters not allowed in a header")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { header })
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Accepts `host:port` as well as a full URL, since both are natural to type.
fn normalize_address(address: &str) -> String {
    let address = address.trim();
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// Connects eagerly so an unreachable control plane is reported as such, not as a failed call.
/// With several addresses, the first that answers.
pub(super) async fn connect(conn: &Connection) -> anyhow::Result<Client> {
    let interceptor = AuthInterceptor::new(conn.admin_token.as_deref())?;
    let tls = conn.client_tls()?;
    let mut failure = anyhow!("no control-plane address given (--control-plane)");
    for address in conn
        .control_plane
        .split(',')
        .filter(|a| !a.trim().is_empty())
    {
        match connect_one(&normalize_address(address), &tls).await {
            Ok(channel) => return Ok(AdminClient::with_interceptor(channel, interceptor)),
            Err(e) => failure = e,
        }
    }
    Err(failure)
}

async fn connect_one(
    address: &str,
    tls: &tokenrouter_data_plane::ClientTls,
) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(address.to_string())
        .with_context(|| format!("invalid control-plane address {address:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if address.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tls.to_tonic())
            .with_context(|| format!("TLS settings for {address}"))?;
    }
    endpoint.connect().await.map_err(|err| {
        anyhow!(
            "cannot reach the control plane at {address}: {}",
            error_chain(&err)
        )
    })
}

/// Awaits one admin call and unwraps its response, mapping a failure to a one-line error.
pub(super) async fn call<T>(
    rpc: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> anyhow::Result<T> {
    rpc.await
        .map(tonic::Response::into_inner)
        .map_err(status_error)
}

/// Runs one write and prints its confirmation (`created provider openai (version 7)`).
pub(super) async fn write(
    printer: &mut Printer<'_>,
    action: Action,
    kind: &str,
    name: &str,
    rpc: impl Future<Output = Result<tonic::Response<WriteResponse>, Status>>,
) -> anyhow::Result<()> {
    let response = call(rpc).await?;
    printer.confirm(action, kind, name, response.version, None)
}

/// `CODE: message`, with a hint where the fix is on the operator's side.
pub(super) fn status_error(status: Status) -> anyhow::Error {
    let code = code_name(status.code());
    let message = one_line(status.message());
    let mut text = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    match status.code() {
        Code::Unauthenticated => {
            text.push_str(" (set --admin-token or TOKENROUTER_ADMIN_TOKEN)");
        }
        Code::FailedPrecondition if message.contains("version") => {
            text.push_str(" (list again and retry with the current --expected-version)");
        }
        _ => {}
    }
    anyhow!(text)
}

/// The canonical gRPC name of a status code, as grpcurl and the other gRPC tools print it.
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Joins an error with its sources (`transport error: tcp connect error: Connection refused`),
/// skipping a source whose text the previous one already contains.
fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// Server messages are data: keep them on one line and free of terminal control characters.
fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().to_string()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn interceptor_adds_bearer_token_only_when_set() {
        let mut with = AuthInterceptor::new(Some("s3cret")).unwrap();
        let request = with.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );

        for token in [None, Some(""), Some("  ")] {
            let mut without = AuthInterceptor::new(token).unwrap();
            let request = without.call(Request::new(())).unwrap();
            assert!(request.metadata().get("authorization").is_none());
        }
    }

    #[test]
    fn interceptor_rejects_a_token_that_cannot_be_a_header_without_echoing_it() {
        let err = AuthInterceptor::new(Some("bad\ntoken-canary"))
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("canary"), "{err}");
    }

    #[test]
    fn status_errors_are_one_line_with_the_code_name() {
        let err = status_error(Status::invalid_argument(
            "providers[x].base_url: scheme must be http or https",
        ));
        assert_eq!(
            err.to_string(),
            "INVALID_ARGUMENT: providers[x].base_url: scheme must be http or https"
        );
        let err = status_error(Status::not_found("no provider named \"x\"\nsecond line"));
        assert_eq!(
            err.to_string(),
            "NOT_FOUND: no provider named \"x\" second line"
        );
        let err = status_error(Status::unauthenticated(""));
        assert!(
            err.to_string()
                .starts_with("UNAUTHENTICATED (set --admin-token")
        );
    }

    #[test]
    fn addresses_without_a_scheme_get_http() {
        assert_eq!(
            normalize_address("127.0.0.1:50051"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(normalize_address(" https://cp:443 "), "https://cp:443");
    }
}
