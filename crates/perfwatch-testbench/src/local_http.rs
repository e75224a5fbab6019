//! The test bench's own HTTP servers (the sample app, the alert webhook):
//! an axum router served on a free 127.0.0.1 port until dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio_util::sync::CancellationToken;

use super::HarnessError;

/// A router being served; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct LocalHttpServer {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl LocalHttpServer {
    /// Serves `router` on 127.0.0.1:0; `server` names it in errors and in
    /// the log. Must run inside a Tokio runtime.
    pub(crate) async fn start(server: &'static str, router: Router) -> Result<Self, HarnessError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(super::io_error(server, "binding 127.0.0.1:0".into()))?;
        let addr = listener
            .local_addr()
            .map_err(super::io_error(server, "reading the bound address".into()))?;
        let cancel = CancellationToken::new();
        let stopped = cancel.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!("{server} stopped: {e}");
            }
        });
        Ok(Self { addr, cancel })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LocalHttpServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
