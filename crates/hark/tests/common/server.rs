//! An axum router served over real HTTP on 127.0.0.1 from its own runtime (the tests are
//! synchronous), stopped when dropped: the webhook server, the bot, fake engines.

/// A local HTTP server: bound by [`bind`](Self::bind), running after [`serve`](Self::serve).
pub struct LocalServer {
    rt: Option<tokio::runtime::Runtime>,
    listener: Option<tokio::net::TcpListener>,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
}

impl LocalServer {
    /// Binds 127.0.0.1:`port` (0 = any free port); requests wait until `serve`.
    pub fn bind(port: u16, workers: usize) -> LocalServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        LocalServer {
            rt: Some(rt),
            listener: Some(listener),
            base,
        }
    }

    /// Starts answering with `router`.
    pub fn serve(&mut self, router: axum::Router) {
        let listener = self.listener.take().expect("served once");
        self.rt.as_ref().expect("runtime").spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
    }

    /// `bind` on any free port, then `serve`.
    pub fn start(workers: usize, router: axum::Router) -> LocalServer {
        let mut server = Self::bind(0, workers);
        server.serve(router);
        server
    }

    /// Runs `f` on the server's runtime (for clients that share it).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("runtime").block_on(f)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
