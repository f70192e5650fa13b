//! Prometheus metrics: request count and latency by route pattern and status, and connection-pool gauges.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// HTTP methods that get their own label value; any other method is counted as `OTHER`.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The label of a request method: itself when standard, else `OTHER` (methods are free-form tokens).
pub fn method_label(method: &str) -> &'static str {
    STANDARD_METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("OTHER")
}

/// The service's metric families, registered once per process.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
}

impl Metrics {
    /// Builds the families. Registration only fails on duplicate names, which these constants never are.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("qip".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route pattern and status.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (in_use, idle).",
            ),
            &["state"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        if let Some(notifications) = NotificationMetrics::get() {
            notifications.register(&registry)?;
        }
        if let Some(audit) = AuditMetrics::get() {
            audit.register(&registry)?;
        }
        Ok(Self {
            registry,
            requests,
            latency,
            pool,
        })
    }

    /// Adds a collector owned elsewhere (per app, like these) to this registry.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// Records one finished request. Every label comes from a closed set, so no client can grow the series:
    /// `method` is a standard method or `OTHER`, `route` the matched pattern (`/api/v1/pools/{id}`, never the
    /// raw path) or `unmatched`.
    pub fn observe_request(&self, method: &str, route: Option<&str>, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [
            method_label(method),
            route.unwrap_or("unmatched"),
            status.as_str(),
        ];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Prometheus text exposition, with the pool gauges set from the given counts.
    pub fn render(&self, pool_in_use: u32, pool_idle: u32) -> String {
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::from(pool_in_use));
        self.pool.with_label_values(&["idle"]).set(i64::from(pool_idle));
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Notification delivery (issue 17): one set of collectors per process, shared by the delivery worker and
/// every registry that renders `/metrics`.
pub struct NotificationMetrics {
    pub sent: IntCounterVec,
    pub failed: IntCounterVec,
    pub retried: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub oldest_undelivered_age: prometheus::IntGauge,
    /// When this process's worker last finished a pass: a stale value means no delivery is happening here.
    pub worker_last_pass: prometheus::IntGauge,
}

static NOTIFICATION_METRICS: std::sync::OnceLock<Option<NotificationMetrics>> = std::sync::OnceLock::new();

impl NotificationMetrics {
    fn build() -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["channel"]);
        Ok(Self {
            sent: counter(
                "notifications_sent_total",
                "Notification deliveries that succeeded, by channel.",
            )?,
            failed: counter(
                "notifications_failed_total",
                "Notification delivery attempts that failed, by channel.",
            )?,
            retried: counter(
                "notifications_retried_total",
                "Failed deliveries scheduled for another attempt, by channel.",
            )?,
            dead_lettered: counter(
                "notifications_dead_lettered_total",
                "Deliveries given up after the retry window (dead letters), by channel.",
            )?,
            oldest_undelivered_age: prometheus::IntGauge::new(
                "notifications_oldest_undelivered_age_seconds",
                "Age of the oldest notification delivery still waiting (0 when none), as of the last worker pass.",
            )?,
            worker_last_pass: prometheus::IntGauge::new(
                "notifications_worker_last_pass_timestamp_seconds",
                "Unix time of this process's last delivery-worker pass (0: no worker runs here).",
            )?,
        })
    }

    /// The process-wide collectors (`None` only if their definitions were invalid, which constants are not).
    pub fn get() -> Option<&'static NotificationMetrics> {
        NOTIFICATION_METRICS.get_or_init(|| Self::build().ok()).as_ref()
    }

    /// Adds the collectors to a registry.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.sent.clone()))?;
        registry.register(Box::new(self.failed.clone()))?;
        registry.register(Box::new(self.retried.clone()))?;
        registry.register(Box::new(self.dead_lettered.clone()))?;
        registry.register(Box::new(self.worker_last_pass.clone()))?;
        registry.register(Box::new(self.oldest_undelivered_age.clone()))
    }
}

/// The audit sealer (issue 14): how far sealing lags behind writing. The age of the oldest unsealed event is
/// the chain's merge delay; docs/OPERATIONS.md ("Audit sealing") gives the alert on it.
pub struct AuditMetrics {
    pub unsealed_events: prometheus::IntGauge,
    pub oldest_unsealed_age: prometheus::Gauge,
    pub sealed: prometheus::IntCounter,
    /// When this process's sealer last finished a pass: a stale value means no sealing is happening here.
    pub sealer_last_pass: prometheus::IntGauge,
}

static AUDIT_METRICS: std::sync::OnceLock<Option<AuditMetrics>> = std::sync::OnceLock::new();

impl AuditMetrics {
    fn build() -> Result<Self, prometheus::Error> {
        Ok(Self {
            unsealed_events: prometheus::IntGauge::new(
                "audit_unsealed_events",
                "Audit events written but not yet sealed into the hash chain, as of the last sealer pass.",
            )?,
            oldest_unsealed_age: prometheus::Gauge::new(
                "audit_oldest_unsealed_age_seconds",
                "Age of the oldest audit event not yet sealed into the hash chain (0 when none), as of the last \
                 sealer pass.",
            )?,
            sealed: prometheus::IntCounter::new(
                "audit_sealed_events_total",
                "Audit events this process's sealer chained into the hash chain.",
            )?,
            sealer_last_pass: prometheus::IntGauge::new(
                "audit_sealer_last_pass_timestamp_seconds",
                "Unix time of this process's last audit sealer pass (0: no sealer runs here).",
            )?,
        })
    }

    /// The process-wide collectors (`None` only if their definitions were invalid, which constants are not).
    pub fn get() -> Option<&'static AuditMetrics> {
        AUDIT_METRICS.get_or_init(|| Self::build().ok()).as_ref()
    }

    /// Adds the collectors to a registry.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.unsealed_events.clone()))?;
        registry.register(Box::new(self.oldest_unsealed_age.clone()))?;
        registry.register(Box::new(self.sealed.clone()))?;
        registry.register(Box::new(self.sealer_last_pass.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_closed_set() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label("FOOBAR"), "OTHER");
    }
}
