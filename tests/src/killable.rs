//! A data plane the test can crash: it runs in a runtime of its own, and dropping that runtime
//! drops every task mid-step, as SIGKILL would (nothing settles, nothing flushes).

use tokenrouter_data_plane::DataPlaneConfig;

use crate::ControlPlaneHandle;

/// A data plane in a runtime of its own, so the test can kill it: dropping the runtime drops
/// every task without letting one finish (no settle, no lease release), as a crash does.
pub struct Killable {
    runtime: Option<tokio::runtime::Runtime>,
    pub url: String,
}

impl Killable {
    pub fn start(config: DataPlaneConfig, cp: &ControlPlaneHandle) -> Killable {
        let cp_url = cp.url();
        // Built and entered on a thread of its own: a runtime cannot start inside the test's.
        let (runtime, url) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let url = runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let state = tokenrouter_data_plane::DataPlaneState::new(config);
                let watch = tokenrouter_data_plane::WatchConfig::new(&cp_url);
                tokio::spawn(tokenrouter_data_plane::serve(
                    listener,
                    None,
                    state,
                    Some(watch),
                    std::future::pending(),
                ));
                format!("http://{addr}")
            });
            (runtime, url)
        })
        .join()
        .unwrap();
        Killable {
            runtime: Some(runtime),
            url,
        }
    }

    pub fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
