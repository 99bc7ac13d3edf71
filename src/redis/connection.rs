//! One shared, self-healing, time-bounded connection to Redis or a Redis Cluster.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, TlsCertificates, Value,
};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::settings::{RedisConfig, RedisTarget};
use crate::error::BackendError;
use crate::telemetry::metric;

/// A handle on Redis shared by every backend of the process; cheap to clone.
///
/// One server: a [`ConnectionManager`] (one multiplexed connection, reconnected in
/// the background after a failure). A cluster: one multiplexed connection per node,
/// routed by key slot. Connecting is lazy, so the server starts (and reports "not
/// ready") while Redis is down. Every command is bounded by the configured timeout.
#[derive(Clone)]
pub struct RedisConnection {
    handle: Handle,
    timeout: Duration,
    prefix: Arc<str>,
    /// Bumped on every failed command, shared by all clones: see [`Self::epoch`].
    failures: Arc<AtomicU64>,
    /// Which backend uses this clone (the `component` label of failures).
    component: &'static str,
}

#[derive(Clone)]
enum Handle {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.handle {
            Handle::Single(_) => "single",
            Handle::Cluster(_) => "cluster",
        };
        // The URL may hold a password: it is never printed.
        f.debug_struct("RedisConnection")
            .field("kind", &kind)
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A connected handle on which commands run.
enum Active {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Active {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Active::Single(c) => c.req_packed_command(cmd),
            Active::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Active::Single(c) => c.req_packed_commands(cmd, offset, count),
            Active::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Active::Single(c) => c.get_db(),
            Active::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisConnection {
    /// A handle for `config`; connects on first use. Must be called inside a Tokio runtime.
    pub fn new(config: &RedisConfig) -> Result<Self, String> {
        let timeout = config.timeout;
        let certs = match &config.ca_file {
            Some(path) => Some(TlsCertificates {
                client_tls: None,
                root_cert: Some(
                    std::fs::read(path).map_err(|e| format!("REDIS_CA_FILE: cannot read: {e}"))?,
                ),
            }),
            None => None,
        };
        let handle = match &config.target {
            RedisTarget::Single(url) => {
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(url.expose_secret(), certs),
                    None => redis::Client::open(url.expose_secret()),
                }
                .map_err(|e| format!("REDIS_URL: {:?}", e.kind()))?;
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    // Reconnect quickly; a request never waits for more than `timeout`.
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(Duration::from_millis(250));
                let manager = ConnectionManager::new_lazy_with_config(client, settings)
                    .map_err(|e| format!("REDIS_URL: {:?}", e.kind()))?;
                Handle::Single(manager)
            }
            RedisTarget::Cluster(nodes) => {
                let urls: Vec<&str> = nodes.iter().map(|n| n.expose_secret()).collect();
                let mut builder = ClusterClient::builder(urls);
                if let Some(certs) = certs {
                    builder = builder.certs(certs);
                }
                let client = builder
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()
                    .map_err(|e| format!("REDIS_CLUSTER_NODES: {:?}", e.kind()))?;
                Handle::Cluster(Arc::new(LazyCluster {
                    client,
                    conn: OnceCell::new(),
                }))
            }
        };
        Ok(Self {
            handle,
            timeout,
            prefix: Arc::from(config.key_prefix.as_str()),
            failures: Arc::new(AtomicU64::new(0)),
            component: "redis",
        })
    }

    /// This connection, with its failures counted under `component` (`id_store`,
    /// `kms`, `limits`).
    pub fn for_component(&self, component: &'static str) -> Self {
        Self {
            component,
            ..self.clone()
        }
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.handle, Handle::Cluster(_))
    }

    /// The key prefix (`REDIS_KEY_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Changes whenever a command has failed since the last call. A backend caching
    /// what it read from Redis compares epochs: after an outage, Redis may have come
    /// back empty (no persistence, a failover), so what was read before is re-read.
    pub fn epoch(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Runs `cmd`, bounded by the timeout.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, BackendError> {
        self.bounded(async {
            let mut conn = self.active().await?;
            cmd.query_async(&mut conn).await.map_err(backend_error)
        })
        .await
    }

    /// Runs a cached script (EVALSHA, loading it on `NOSCRIPT`), bounded by the timeout.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, BackendError> {
        self.bounded(async {
            let mut conn = self.active().await?;
            script.invoke_async(&mut conn).await.map_err(backend_error)
        })
        .await
    }

    /// `PING`: whether Redis answers within the timeout.
    pub async fn ping(&self) -> Result<(), BackendError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(BackendError::Internal("unexpected answer to PING".into()))
        }
    }

    async fn active(&self) -> Result<Active, BackendError> {
        match &self.handle {
            Handle::Single(m) => Ok(Active::Single(m.clone())),
            Handle::Cluster(lazy) => {
                // A failed first connection leaves the cell empty: the next request retries.
                let conn = lazy
                    .conn
                    .get_or_try_init(|| lazy.client.get_async_connection())
                    .await
                    .map_err(backend_error)?;
                Ok(Active::Cluster(conn.clone()))
            }
        }
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let result = tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Unavailable(format!(
                    "redis did not answer within {} ms",
                    self.timeout.as_millis()
                )))
            });
        if matches!(result, Err(BackendError::Unavailable(_))) {
            self.failures.fetch_add(1, Ordering::AcqRel);
        }
        if result.is_err() {
            let backend = match self.handle {
                Handle::Single(_) => "redis",
                Handle::Cluster(_) => "redis-cluster",
            };
            metric::backend_error(backend, self.component);
        }
        result
    }
}

/// Connection trouble is `Unavailable` (retry later); a reply of the wrong shape is `Internal`.
fn backend_error(e: RedisError) -> BackendError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            BackendError::Internal(format!("redis: {e}"))
        }
        _ => BackendError::Unavailable(format!("redis: {e}")),
    }
}
