//! A TCP forwarder the test can cut: while cut, open connections are closed and new ones are
//! accepted and closed at once, as when a database host goes away; restored, it forwards again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarder from a loopback port to `target`.
pub struct TcpCut {
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl TcpCut {
    pub async fn start(target: SocketAddr) -> TcpCut {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = watching.clone();
                if *state.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = state.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        TcpCut { addr, cut }
    }

    /// Closes every forwarded connection and refuses new ones until [`TcpCut::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}
