//! Starts every listener and runs until a shutdown signal arrives.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

use crate::config::Config;

/// Runs the server until `shutdown` resolves, then drains and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let addr = listener.local_addr()?;
    info!(
        http = %addr,
        data_dir = %config.data_dir.display(),
        rtp_ports = format!("{}-{}", config.rtp.port_min, config.rtp.port_max),
        version = crate::VERSION,
        "hotline listening"
    );
    axum::serve(listener, crate::http::router())
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")?;
    info!("hotline stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("interrupt received, shutting down"),
        () = term => info!("SIGTERM received, shutting down"),
    }
}
