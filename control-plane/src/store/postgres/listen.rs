//! The `LISTEN` side of commit announcements: one connection per store, re-opened after any
//! failure, turning `NOTIFY` payloads into the latest version another copy committed.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// Longest pause between attempts to re-open the `LISTEN` connection.
const LISTEN_RETRY_CAP: Duration = Duration::from_secs(5);

/// Holds a `LISTEN` connection open (re-opening it after any failure) and announces each version
/// another copy commits. Notifications missed while it reconnects are found by the poll.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    channel: String,
    announce: watch::Sender<u64>,
) {
    let mut failures: u32 = 0;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (done_tx, done) = tokio::sync::oneshot::channel::<()>();
                let tx = announce.clone();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if let Ok(version) = n.payload().parse::<u64>() {
                                    tx.send_if_modified(|v| {
                                        let newer = version > *v;
                                        if newer {
                                            *v = version;
                                        }
                                        newer
                                    });
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "postgres LISTEN connection failed");
                                break;
                            }
                        }
                    }
                    let _ = done_tx.send(());
                });
                match client.batch_execute(&format!("LISTEN {channel}")).await {
                    Ok(()) => {
                        failures = 0;
                        let _ = done.await;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for commits"),
                }
                drop(client);
                driver.abort();
            }
            Err(e) => tracing::debug!(error = %e, "cannot open the LISTEN connection"),
        }
        failures = failures.saturating_add(1);
        let pause = Duration::from_millis(100)
            .saturating_mul(1 << failures.min(6))
            .min(LISTEN_RETRY_CAP);
        tokio::time::sleep(pause).await;
    }
}
