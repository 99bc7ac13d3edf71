//! What the service tells its operators, beside the access log: Prometheus metrics
//! ([`metric`], rendered by [`exporter`] on `METRICS_ADDR`) and audit events
//! ([`audit`], the `audit` log target).
//!
//! Both are recorded where the event happens (the protocol, the limits, the
//! backends) through calls that cost next to nothing when nobody listens: without
//! a metrics recorder each metric call is a no-op, and `RUST_LOG=audit=off`
//! silences the audit target.

pub mod audit;
pub mod background;
pub mod batched;
pub mod exporter;
pub mod logging;
pub mod metric;

pub use audit::Audit;
