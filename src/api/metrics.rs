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

/// Durations by label set, in fixed buckets (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    series: DashMap<Vec<(&'static str, String)>, Series>,
}

#[derive(Debug)]
struct Series {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// A histogram with upper bounds `bounds` (ascending, seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            series: DashMap::new(),
        }
    }

    /// Records one duration under `labels` (bounded values only: route
    /// templates, stage names, never ids).
    pub fn observe(&self, labels: &[(&'static str, &str)], took: Duration) {
        let key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let s = self.series.entry(key).or_insert_with(|| Series {
            buckets: self.bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        });
        let secs = took.as_secs_f64();
        for (i, le) in self.bounds.iter().enumerate() {
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
        let mut keys: Vec<Vec<(&'static str, String)>> =
            self.series.iter().map(|e| e.key().clone()).collect();
        keys.sort();
        for key in keys {
            let Some(s) = self.series.get(&key) else {
                continue;
            };
            let base = labels(&key);
            let with_le = |le: &str| {
                let inner = base.trim_start_matches('{').trim_end_matches('}');
                if inner.is_empty() {
                    format!("{{le=\"{le}\"}}")
                } else {
                    format!("{{{inner},le=\"{le}\"}}")
                }
            };
            for (i, le) in self.bounds.iter().enumerate() {
                let v = s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{} {v}", with_le(&le.to_string()));
            }
            let count = s.count.load(Ordering::Relaxed);
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{} {count}", with_le("+Inf"));
            let _ = writeln!(out, "{name}_sum{base} {sum}");
            let _ = writeln!(out, "{name}_count{base} {count}");
        }
    }
}

/// Upper bounds of the voice agent's turn-latency histogram, in seconds.
pub const AGENT_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0];

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    /// Calls by final status (`completed`, `busy`…) and direction.
    pub calls: LabelledCounter,
    /// Webhook delivery attempts by result (`delivered`, `retry`, `failed`).
    pub webhook_deliveries: LabelledCounter,
    /// HTTP latency by route template and status class.
    pub http: Histogram,
    /// The voice agent's per-turn latencies by stage (`stt`,
    /// `llm_first_token`, `tts_first_audio`, `voice_to_voice`, `server`).
    pub agent_turns: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            calls: LabelledCounter::default(),
            webhook_deliveries: LabelledCounter::default(),
            http: Histogram::new(&LATENCY_BUCKETS),
            agent_turns: Histogram::new(&AGENT_BUCKETS),
        }
    }
}

impl Metrics {
    /// Records a voice agent turn's timings.
    pub fn agent_turn(&self, m: &crate::agent::TurnMetrics) {
        let stages = [
            ("stt", m.stt_ms),
            ("llm_first_token", m.llm_first_token_ms),
            ("tts_first_audio", m.tts_first_audio_ms),
            ("voice_to_voice", m.voice_to_voice_ms),
            ("server", m.server_ms),
        ];
        for (stage, ms) in stages {
            if let Some(ms) = ms {
                self.agent_turns
                    .observe(&[("stage", stage)], Duration::from_millis(ms));
            }
        }
    }
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
        self.agent_turns.render(
            &mut out,
            "hotline_agent_turn_seconds",
            "Voice agent turn latency by stage: STT after end of speech, LLM first token, TTS first audio, end of speech to first agent audio, and the server's own share.",
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
        m.http.observe(
            &[("route", "/v1/calls/{id}"), ("status", "2xx")],
            Duration::from_millis(3),
        );
        m.http.observe(
            &[("route", "/v1/calls/{id}"), ("status", "4xx")],
            Duration::from_millis(30),
        );
        m.agent_turn(&crate::agent::TurnMetrics {
            voice_to_voice_ms: Some(420),
            server_ms: Some(12),
            ..Default::default()
        });
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
        assert!(
            text.contains(
                "hotline_agent_turn_seconds_bucket{stage=\"voice_to_voice\",le=\"0.5\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("hotline_agent_turn_seconds_count{stage=\"server\"} 1\n"));
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
