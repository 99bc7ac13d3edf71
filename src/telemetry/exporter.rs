//! The Prometheus exporter: installs the recorder, keeps its histograms drained,
//! and serves `GET /metrics` on a listener of its own (`METRICS_ADDR`), so the
//! metrics are not reachable through the public API's address.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::plugin::IdStore;
use crate::telemetry::metric;

/// Latency buckets, in seconds: a fast answer takes well under a millisecond, a
/// send through SMTP or a webhook up to the request timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The installed Prometheus recorder.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    ids: Arc<dyn IdStore>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Installs the Prometheus recorder as the process's `metrics` recorder and
    /// starts recording; `ids` reports the live sessions at each scrape. Must run
    /// inside a Tokio runtime (it spawns the upkeep task). Fails if another
    /// recorder is installed.
    pub fn install(ids: Arc<dyn IdStore>) -> Result<Self, String> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(metric::HTTP_DURATION.to_owned()),
                &LATENCY_BUCKETS,
            )
            .map_err(|e| format!("metrics: {e}"))?
            .install_recorder()
            .map_err(|e| format!("metrics: {e}"))?;
        metric::describe();
        metric::set_enabled(true);
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Self { handle, ids })
    }

    /// The exposition text, with the gauges that are read at scrape time.
    pub fn render(&self) -> String {
        if let Some(live) = self.ids.live() {
            metric::live_sessions(live);
        }
        self.handle.render()
    }

    /// `GET /metrics` (anything else: `404`).
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(self)
    }
}

async fn scrape(axum::extract::State(exporter): axum::extract::State<Exporter>) -> Response {
    let body = exporter.render();
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
