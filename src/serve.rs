//! `inboxgrove serve`: opens the data dir, prepares the certificate, binds the listeners, prints
//! the one-time setup link while no admin exists, and runs until SIGTERM or Ctrl-C.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app::App;
use crate::auth::users;
use crate::config::Config;

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("Cannot listen on {} (http.listen)", config.http.listen))?;
    let bound = listener.local_addr()?;
    config.default_base_url(bound);
    let app = App::open(config).await?;
    let interrupted = crate::campaign::import::recover_interrupted(&app).await?;
    if interrupted > 0 {
        tracing::warn!(imports = interrupted, "lead imports interrupted by the last stop are marked failed");
    }
    crate::tls::ensure_certificate(&app.config, app.clock.unix())?;
    let certificates = crate::tls::Certificates::load(&app.config)?;
    let tls = certificates.server_config();
    tracing::info!(address = %bound, data_dir = %app.config.data_dir.display(), "admin UI listening");
    println!("InboxGrove admin UI on {}", app.config.http.base_url);
    for warning in app.config.deployment_warnings() {
        tracing::warn!("{warning}");
        println!("Warning: {warning}");
    }
    if let Some(link) = users::setup_link(&app).await? {
        println!("Create the first admin (this link works once): {link}");
    }
    // Mail listeners and workers start here (SMTP submission and inbound, the delivery queue, IMAP).
    crate::smtp::start(&app, tls.clone()).await?;
    crate::imap::start(&app, tls).await?;
    crate::tls::start_renewal(&app, certificates);
    crate::mta::deliver::start(&app)?;
    crate::campaign::engine::start(&app);
    crate::warmup::engine::start(&app);
    let stopping = app.clone();
    crate::web::serve(app.clone(), listener, async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
    tracing::info!("shutting down");
}
