//! A stand-in's HTTP server: bound to a free port on 127.0.0.1, serving its router in the
//! background until the last handle to it is dropped.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A bound, not yet serving, listener: its URL is known before the router is built, so a
/// stand-in can put it in the state its handlers share.
pub struct Listener {
    inner: TcpListener,
    url: String,
}

impl Listener {
    /// Binds `127.0.0.1:0`.
    pub async fn bind() -> std::io::Result<Self> {
        let inner = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", inner.local_addr()?);
        Ok(Self { inner, url })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves `app` until the last clone of the returned handle is dropped.
    pub fn serve(self, app: Router) -> Serving {
        let shutdown = CancellationToken::new();
        let stopped = shutdown.clone();
        tokio::spawn(async move {
            // A stand-in that fails mid-test shows up as refused connections in that test.
            let _ = axum::serve(self.inner, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await;
        });
        Serving {
            _guard: Arc::new(shutdown.drop_guard()),
        }
    }
}

/// Keeps a server running; it stops gracefully when the last clone is dropped.
#[derive(Clone)]
pub struct Serving {
    _guard: Arc<DropGuard>,
}
