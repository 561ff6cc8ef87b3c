//! Starts every listener and runs until a shutdown signal arrives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hotline_sip::transport::Transport;
use tokio::net::TcpListener;
use tracing::info;

use crate::call::CallRegistry;
use crate::config::Config;
use crate::engine::Engine;

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
    let config = Arc::new(config);
    let registry = CallRegistry::new(config.sip.max_calls);
    let store = crate::store::Store::open_config(&config)
        .await
        .context("cannot open the database")?;
    let engine = Engine::start(config.clone(), registry.clone()).await?;
    // The voice agent: its local models load in the background, so the
    // server answers at once; the first agent call waits for them.
    let agents = crate::agent::service::AgentService::new(&config, Some(store.clone()));
    engine.set_agents(agents.clone());
    let numbers = crate::api::calls::numbers::load_all(&store, &engine)
        .await
        .context("cannot load numbers from the database")?;
    let state = crate::api::AppState::new(config.clone(), store.clone(), Some(engine.clone()));
    state.reports.set_agents(agents.clone());
    // The control plane's background work: call events into records, live
    // events and webhooks; webhook deliveries out of the outbox.
    let (tasks_stop, tasks_stopped) = tokio::sync::watch::channel(false);
    let wake = state.webhook_wake.clone();
    let alerts = crate::api::alerts::scheduler::spawn(state.clone(), tasks_stopped.clone());
    let bridge = crate::api::calls::bridge::spawn(
        state.clone(),
        registry,
        wake.clone(),
        tasks_stopped.clone(),
    );
    let dispatcher =
        crate::api::calls::dispatch::spawn(state.clone(), engine.clone(), tasks_stopped.clone());
    let deliverer = crate::api::calls::webhooks::Deliverer::new(
        store,
        crate::api::calls::webhooks::DeliveryConfig::default(),
        state.metrics.clone(),
    )?
    .spawn(wake, tasks_stopped);
    let hub = state.hub.clone();
    let sip = |t| {
        engine
            .local_addr(t)
            .map_or_else(|| "-".to_owned(), |a| a.to_string())
    };
    info!(
        http = %addr,
        sip_udp = %sip(Transport::Udp),
        sip_tcp = %sip(Transport::Tcp),
        data_dir = %config.data_dir.display(),
        rtp_ports = format!("{}-{}", config.rtp.port_min, config.rtp.port_max),
        stored_numbers = numbers,
        version = crate::VERSION,
        "hotline listening"
    );
    tokio::spawn(async move { agents.warm_up().await });
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, crate::http::router(state)).with_graceful_shutdown(async {
        let _ = http_stopped.await;
    });
    let http = tokio::spawn(async move { serve.await });
    shutdown.await;
    let grace = Duration::from_secs(config.sip.drain_secs);
    info!(
        calls = engine.registry().len(),
        grace_secs = grace.as_secs(),
        "draining: new calls get 503, live calls may finish"
    );
    engine.drain(grace).await;
    // Calls are over: record their ends, then stop sending webhooks (the
    // outbox keeps what is left for the next start) and close WebSockets.
    let _ = tasks_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), bridge).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), alerts).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), dispatcher).await;
    let _ = tokio::time::timeout(Duration::from_secs(15), deliverer).await;
    hub.close_all();
    let _ = http_stop.send(());
    http.await
        .context("HTTP server task failed")?
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
