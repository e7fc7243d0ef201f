//! The wiring: startup (`Application::build`, which tests start on port 0),
//! the connectors' capabilities, background work and graceful shutdown. The
//! state handlers see is [`crate::http::App`].

use crate::capabilities::CoreServices;
use crate::config::Config;
pub use crate::connector_host::RunningConnector;
use crate::connector_host::{catalogue_from, running_connectors, Connectors};
use crate::http::logins::Accounts;
use crate::http::shared_limits::SharedLimits;
use crate::http::throttle::{ApiLimiters, AuthThrottle};
pub use crate::http::{App, AppState};
use crate::keys::{Keyring, LogKeys};
use crate::outbound_log::{checkpoint, OutboundLog};
use crate::registry::Registry;
use crate::tenancy::Tenancy;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A gateway bound to its port, ready to serve.
pub struct Application {
    listener: tokio::net::TcpListener,
    /// `/metrics`'s own listener and the recorder's handle, unless metrics are off.
    metrics: Option<(tokio::net::TcpListener, PrometheusHandle)>,
    state: AppState,
    log_writer: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Connects the registry, runs migrations, binds the listener; runs `connectors`
    /// (the registration list the caller hands down).
    pub async fn build(
        config: Config,
        keyring: Arc<Keyring>,
        connectors: Connectors,
    ) -> anyhow::Result<Self> {
        let metrics = match config.metrics_listen {
            Some(addr) => match crate::metrics::install() {
                Some(handle) => {
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
                    Some((listener, handle))
                }
                None => None,
            },
            None => None,
        };
        let shared_limits = match &config.redis_url {
            Some(url) => {
                let shared = SharedLimits::new(url, keyring.limiter_names_mac())
                    .map_err(|e| anyhow::anyhow!(e))?;
                if !shared.ping().await {
                    tracing::warn!("Redis for shared limits does not answer yet: until it does, failure budgets refuse (503) and API limits are per process");
                }
                Some(Arc::new(shared))
            }
            None => None,
        };
        let registry = Registry::connect_and_migrate(&config.database_url).await?;
        let catalogue = catalogue_from(&connectors, config.schemas_dir.as_deref())?;
        let log_keys = Arc::new(keyring.log_keys());
        let checkpoints_written = std::fs::metadata(&config.checkpoint_path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        match crate::outbound_log::rekey_at_upgrade(&registry, &log_keys, checkpoints_written)
            .await?
        {
            Ok(r) if r.records > 0 || !r.refused.is_empty() => tracing::info!(
                firms = r.firms,
                records = r.records,
                refused = r.refused.len(),
                "outbound log records from before the keyed chain re-keyed"
            ),
            Ok(_) => {}
            Err(firms) => tracing::error!(
                firms,
                "the outbound log holds records with a plain, unkeyed hash after the upgrade: run `scopegate audit verify`; only if they are genuinely from before the upgrade, `scopegate audit rekey`"
            ),
        }
        let (log, log_writer) = OutboundLog::start(registry.clone(), log_keys.clone());
        let tenancy = Tenancy::new(registry.clone(), config.firm_pool_capacity);
        let (stopping, stop_signal) = tokio::sync::watch::channel(false);
        // The webhook sender ends by itself once every handle on its queue is dropped.
        let webhook = config
            .alert_webhook
            .clone()
            .map(|webhook| crate::alert_webhook::start(webhook).0);
        let alerts = crate::security::Alerts::new(registry.clone(), webhook);
        let connectors = running_connectors(
            connectors,
            &CoreServices::new(
                registry.clone(),
                tenancy.clone(),
                log.clone(),
                keyring.clone(),
            )
            .with_alerts(alerts.clone()),
            &catalogue,
            &config,
            &stop_signal,
        );
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let trusted = Arc::new(config.trusted_proxies.clone());
        let app = App {
            tenancy: tenancy.clone(),
            connectors,
            stopping,
            alerts,
            auth_throttle: AuthThrottle::new("oauth_token", &config.limits, shared_limits.clone()),
            api_limiters: ApiLimiters::new(&config.limits, trusted, shared_limits.clone()),
            accounts: Accounts::new(&config, shared_limits),
            registry,
            log,
            catalogue,
            keyring,
            log_keys,
            config,
        };
        Ok(Self {
            listener,
            metrics,
            state: AppState(Arc::new(app)),
            log_writer,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Where `/metrics` is served, if metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(|(listener, _)| listener.local_addr().expect("bound listener"))
    }

    /// Serves until `shutdown` resolves, then drains requests and the log writer.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics,
            state,
            log_writer,
        } = self;
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_task = metrics.map(|(listener, handle)| {
            tokio::spawn(crate::metrics::serve(listener, handle, async move {
                let _ = metrics_stopped.await;
            }))
        });
        let pruner = tokio::spawn(prune_periodically(state.clone()));
        let checkpoints = (state.config.checkpoint_interval_secs > 0).then(|| {
            tokio::spawn(checkpoint_periodically(
                state.registry.clone(),
                state.log_keys.clone(),
                state.config.checkpoint_path.clone(),
                Duration::from_secs(state.config.checkpoint_interval_secs),
            ))
        });
        let background: Vec<_> = state
            .connectors
            .iter()
            .filter_map(|r| r.connector.background(r.capabilities.clone()))
            .map(tokio::spawn)
            .collect();
        let router = crate::http::router(state.clone());
        crate::http::server::serve(listener, router, state.config.server, shutdown).await?;
        let _ = metrics_stop.send(());
        if let Some(task) = metrics_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        pruner.abort();
        if let Some(task) = &checkpoints {
            task.abort();
        }
        state.stopping.send_replace(true);
        for task in background {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        let registry = state.registry.clone();
        let final_checkpoint = checkpoints
            .is_some()
            .then(|| (state.log_keys.clone(), state.config.checkpoint_path.clone()));
        drop(state);
        // The writer ends once the last log handle is gone, after committing its queue.
        let _ = tokio::time::timeout(Duration::from_secs(10), log_writer).await;
        if let Some((keys, path)) = final_checkpoint {
            if let Err(e) = write_checkpoint(&registry, &keys, &path).await {
                tracing::warn!(error = %e, "could not write the final checkpoint");
            }
        }
        registry.close().await;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

impl Application {
    /// Ends an application that never served (a CLI task): commits the log's queue.
    pub async fn close(self) {
        let Application {
            state, log_writer, ..
        } = self;
        state.stopping.send_replace(true);
        let registry = state.registry.clone();
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(10), log_writer).await;
        registry.close().await;
    }
}

async fn prune_periodically(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.auth_throttle.prune();
        state.api_limiters.prune();
        state.accounts.login_throttle.prune();
        if let Err(e) = state.registry.prune_sessions(state.accounts.idle_ms).await {
            tracing::warn!(error = %e, "could not prune settings sessions");
        }
        if let Err(e) = state.registry.prune_expired_tokens().await {
            tracing::warn!(error = %e, "could not prune expired tokens");
        }
        purge_terminated_firms(&state).await;
        if state.config.auto_disable_unused {
            switch_off_unused_grants(&state, crate::clock::now_ms()).await;
        }
    }
}

/// One grant the gateway switched off for want of use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchedOffUnused {
    pub firm_id: String,
    pub connector: String,
    pub days: i64,
}

/// Switches off every enabled grant with no outbound record for
/// `unused_grant_days` at `now`, through the same path as an admin's
/// switch-off (credentials and tokens revoked, the connector's switch-off
/// work), with ledger actor `scopegate` and the reason `unused for N days`.
/// One firm at a time: a firm whose registry rows cannot be read is logged
/// and skipped. Safe with several instances: the switch is conditional, and
/// the instance that loses the race sees a conflict and moves on.
pub async fn switch_off_unused_grants(state: &AppState, now: i64) -> Vec<SwitchedOffUnused> {
    let threshold = state.config.unused_grant_days;
    let firms = match state.registry.firms().await {
        Ok(firms) => firms,
        Err(e) => {
            tracing::warn!(error = %e, "could not list firms to look for unused grants");
            return Vec::new();
        }
    };
    let mut done = Vec::new();
    for firm in firms {
        let unused = match crate::privacy::unused_grants_of(
            &state.registry,
            &firm.id,
            threshold,
            now,
        )
        .await
        {
            Ok(unused) => unused,
            Err(e) => {
                tracing::warn!(firm_id = firm.id, error = %e, "could not look for unused grants");
                continue;
            }
        };
        for u in unused {
            let Some(c) = state.catalogue.get(&u.grant.connector) else {
                continue;
            };
            let reason = format!("unused for {threshold} days");
            match crate::http::admin::connectors::switch_off(
                state,
                &firm.id,
                &c,
                crate::http::admin::connectors::SwitchedBy::Gateway { reason: &reason },
                &Default::default(),
            )
            .await
            {
                Ok(_) => {
                    tracing::info!(
                        firm_id = firm.id,
                        connector = c.id(),
                        days = u.days,
                        "switched off an unused grant"
                    );
                    done.push(SwitchedOffUnused {
                        firm_id: firm.id.clone(),
                        connector: c.id().to_string(),
                        days: u.days,
                    });
                }
                Err(p) if p.status == axum::http::StatusCode::CONFLICT => {}
                Err(p) => {
                    tracing::warn!(firm_id = firm.id, connector = c.id(), problem = ?p, "could not switch off an unused grant")
                }
            }
        }
    }
    done
}

/// Purges the terminated firms whose retention (or audit) period has ended.
/// Safe with several instances: each purge locks its firm's row first.
async fn purge_terminated_firms(state: &AppState) {
    const DAY_MS: i64 = 86_400_000;
    let policy = crate::privacy::RetentionPolicy {
        data_ms: state.config.retention_after_termination_days as i64 * DAY_MS,
        log_ms: state.config.audit_retention_days as i64 * DAY_MS,
    };
    match crate::privacy::purge_due(
        &state.registry,
        &state.log_keys,
        policy,
        crate::clock::now_ms(),
    )
    .await
    {
        Ok(done) => {
            for purged in done {
                match purged {
                    crate::privacy::Purged::Data { firm_id } => tracing::info!(
                        firm_id,
                        "retention ended: the terminated firm's registry data is purged (its outbound log is kept for the audit period)"
                    ),
                    crate::privacy::Purged::Everything { tombstone } => tracing::info!(
                        firm_id = tombstone.firm_id,
                        last_seq = tombstone.last_seq,
                        "retention ended: the terminated firm is purged, its outbound log kept as a tombstone"
                    ),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not purge terminated firms"),
    }
}

/// Signs every firm's chain head now and appends it to `path`; returns the checkpoint.
pub async fn write_checkpoint(
    registry: &Registry,
    keys: &LogKeys,
    path: &std::path::Path,
) -> anyhow::Result<checkpoint::Checkpoint> {
    let heads = checkpoint::current_heads(registry).await?;
    let cp = checkpoint::Checkpoint::new(heads, keys);
    let line = cp.signed_line(keys);
    let target = path.to_path_buf();
    tokio::task::spawn_blocking(move || checkpoint::append_line(&target, &line))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", path.display()))?;
    Ok(cp)
}

/// Writes a checkpoint at startup and then every `every`, skipping those that
/// would repeat the last one written (no chain moved).
async fn checkpoint_periodically(
    registry: Registry,
    keys: Arc<LogKeys>,
    path: std::path::PathBuf,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tick.tick().await;
        let heads = match checkpoint::current_heads(&registry).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the chain heads for a checkpoint");
                continue;
            }
        };
        if last.as_ref() == Some(&heads) {
            continue;
        }
        let line = checkpoint::Checkpoint::new(heads.clone(), &keys).signed_line(&keys);
        let target = path.clone();
        match tokio::task::spawn_blocking(move || checkpoint::append_line(&target, &line)).await {
            Ok(Ok(())) => last = Some(heads),
            Ok(Err(e)) => {
                tracing::error!(path = %path.display(), error = %e, "could not append a checkpoint")
            }
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
