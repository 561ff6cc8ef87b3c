//! Prometheus metrics in the text exposition format, served at
//! `/metrics`. A handful of counters, gauges and one histogram do not
//! justify an exporter crate and its TLS stack; updates are atomic
//! increments, so recording never blocks a request or a call.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

/// Upper bounds of the HTTP latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters keyed by a label set, e.g. calls by status.
#[derive(Debug, Default)]
pub struct LabelledCounter {
    values: DashMap<Vec<(&'static str, String)>, AtomicU64>,
}

impl LabelledCounter {
    /// Adds one to the counter with `labels`.
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        let key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.values
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let mut rows: Vec<(String, u64)> = self
            .values
            .iter()
            .map(|e| (labels(e.key()), e.value().load(Ordering::Relaxed)))
            .collect();
        rows.sort();
        for (l, v) in rows {
            let _ = writeln!(out, "{name}{l} {v}");
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(set: &[(&'static str, String)]) -> String {
    if set.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = set
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// HTTP request latencies by route template and status class.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    series: DashMap<(String, String), Series>,
}

#[derive(Debug, Default)]
struct Series {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Records one request to `route` (the template, never the raw path,
    /// so ids do not explode the series) answered with `status`.
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        let class = format!("{}xx", status / 100);
        let s = self.series.entry((route.to_owned(), class)).or_default();
        let secs = took.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut keys: Vec<(String, String)> = self.series.iter().map(|e| e.key().clone()).collect();
        keys.sort();
        for key in keys {
            let Some(s) = self.series.get(&key) else {
                continue;
            };
            let base = format!("route=\"{}\",status=\"{}\"", escape(&key.0), key.1);
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                let v = s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{{base},le=\"{le}\"}} {v}");
            }
            let count = s.count.load(Ordering::Relaxed);
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{base},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{{base}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{base}}} {count}");
        }
    }
}

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Calls by final status (`completed`, `busy`…) and direction.
    pub calls: LabelledCounter,
    /// Webhook delivery attempts by result (`delivered`, `retry`, `failed`).
    pub webhook_deliveries: LabelledCounter,
    /// HTTP latency.
    pub http: LatencyHistogram,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Calls in progress.
    pub live_calls: usize,
    /// WebSocket subscribers.
    pub ws_subscribers: usize,
    /// Webhook deliveries waiting in the outbox.
    pub webhook_pending: Option<u64>,
}

impl Metrics {
    /// The text exposition of everything, with `gauges` read by the caller.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "hotline_live_calls",
            "Calls in progress.",
            gauges.live_calls as u64,
        );
        gauge(
            &mut out,
            "hotline_ws_subscribers",
            "Live WebSocket event subscribers.",
            gauges.ws_subscribers as u64,
        );
        if let Some(p) = gauges.webhook_pending {
            gauge(
                &mut out,
                "hotline_webhook_pending",
                "Webhook deliveries in the outbox.",
                p,
            );
        }
        self.calls.render(
            &mut out,
            "hotline_calls_total",
            "Finished calls by status and direction.",
        );
        self.webhook_deliveries.render(
            &mut out,
            "hotline_webhook_deliveries_total",
            "Webhook delivery attempts by result.",
        );
        self.http.render(
            &mut out,
            "hotline_http_request_duration_seconds",
            "HTTP request latency by route and status class.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        m.calls
            .inc(&[("status", "completed"), ("direction", "outbound")]);
        m.calls
            .inc(&[("status", "completed"), ("direction", "outbound")]);
        m.calls
            .inc(&[("status", "busy"), ("direction", "outbound")]);
        m.http
            .observe("/v1/calls/{id}", 200, Duration::from_millis(3));
        m.http
            .observe("/v1/calls/{id}", 404, Duration::from_millis(30));
        let text = m.render(Gauges {
            live_calls: 7,
            ws_subscribers: 2,
            webhook_pending: Some(1),
        });
        assert!(text.contains("hotline_live_calls 7\n"));
        assert!(text.contains("hotline_ws_subscribers 2\n"));
        assert!(
            text.contains("hotline_calls_total{status=\"completed\",direction=\"outbound\"} 2\n")
        );
        assert!(text.contains("hotline_calls_total{status=\"busy\",direction=\"outbound\"} 1\n"));
        let b =
            "hotline_http_request_duration_seconds_bucket{route=\"/v1/calls/{id}\",status=\"2xx\"";
        assert!(text.contains(&format!("{b},le=\"0.0025\"}} 0\n")), "{text}");
        assert!(text.contains(&format!("{b},le=\"0.005\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("{b},le=\"+Inf\"}} 1\n")), "{text}");
        assert!(text.contains(
            "hotline_http_request_duration_seconds_count{route=\"/v1/calls/{id}\",status=\"4xx\"} 1\n"
        ));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.calls.inc(&[("status", "we\"ird\n")]);
        let text = m.render(Gauges::default());
        assert!(text.contains("status=\"we\\\"ird\\n\""), "{text}");
    }
}
