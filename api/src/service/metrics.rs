//! Prometheus metrics at `/metrics`, in the text exposition format (version 0.0.4):
//! appends and the sequencer's batch sizes, each view's lag behind the log, request
//! counts and latency by route, notice changes sent, webhook failures.
//!
//! Kept by hand rather than with a metrics crate: a handful of counters and one
//! histogram family do not justify another dependency tree on a two-core build. Labels
//! are route templates (`/v1/views/{view}`), never paths with ids, tokens or subjects.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request-latency buckets, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default, Clone)]
struct Latency {
    /// Requests per bucket of [`LATENCY_BUCKETS`] (not cumulative), then the slower.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub notice_changes: Counter,
    pub webhook_failed_attempts: Counter,
    pub webhook_failed_deliveries: Counter,
    /// (method, route, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency.
    latency: Mutex<BTreeMap<String, Latency>>,
}

/// What the scrape reads from elsewhere at the moment of scraping.
pub struct Gauges<'a> {
    pub ledger: ledger::pipeline::stats::StatsSnapshot,
    pub tree_size: u64,
    pub views: &'a [projections::ViewStatus],
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        *lock(&self.requests)
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
        let seconds = took.as_secs_f64();
        let mut latency = lock(&self.latency);
        let l = latency.entry(route.to_string()).or_default();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        l.buckets[bucket] += 1;
        l.sum += seconds;
        l.count += 1;
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(8192);
        let l = &gauges.ledger;
        put(
            &mut out,
            "isa_ledger_appended_entries_total",
            "counter",
            "Entries this process committed to the log.",
            &[format!("isa_ledger_appended_entries_total {}", l.entries)],
        );
        put(
            &mut out,
            "isa_ledger_tree_size",
            "gauge",
            "Entries in the log (the latest checkpoint's size).",
            &[format!("isa_ledger_tree_size {}", gauges.tree_size)],
        );
        let mut batch = Vec::new();
        for (bound, count) in ledger::pipeline::stats::BATCH_BUCKETS
            .iter()
            .zip(&l.batches_up_to)
        {
            batch.push(format!(
                "isa_ledger_append_batch_size_bucket{{le=\"{bound}\"}} {count}"
            ));
        }
        batch.push(format!(
            "isa_ledger_append_batch_size_bucket{{le=\"+Inf\"}} {}",
            l.batches
        ));
        batch.push(format!("isa_ledger_append_batch_size_sum {}", l.entries));
        batch.push(format!("isa_ledger_append_batch_size_count {}", l.batches));
        put(
            &mut out,
            "isa_ledger_append_batch_size",
            "histogram",
            "Entries per committed batch (group commit: one fsync per batch).",
            &batch,
        );
        let mut behind = Vec::new();
        let mut lag = Vec::new();
        let mut stopped = Vec::new();
        for v in gauges.views {
            behind.push(format!(
                "isa_ledger_view_behind_entries{{view=\"{}\"}} {}",
                v.view, v.behind
            ));
            lag.push(format!(
                "isa_ledger_view_lag_seconds{{view=\"{}\"}} {}",
                v.view, v.lag_seconds
            ));
            stopped.push(format!(
                "isa_ledger_view_stopped{{view=\"{}\"}} {}",
                v.view,
                u8::from(v.stopped.is_some())
            ));
        }
        put(
            &mut out,
            "isa_ledger_view_behind_entries",
            "gauge",
            "Log entries a view has not taken yet.",
            &behind,
        );
        put(
            &mut out,
            "isa_ledger_view_lag_seconds",
            "gauge",
            "Seconds since the oldest entry a view has not taken was recorded.",
            &lag,
        );
        put(
            &mut out,
            "isa_ledger_view_stopped",
            "gauge",
            "1 if a view stopped on an entry it cannot take.",
            &stopped,
        );
        let requests: Vec<String> = lock(&self.requests)
            .iter()
            .map(|((method, route, status), n)| {
                format!(
                    "isa_ledger_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                )
            })
            .collect();
        put(
            &mut out,
            "isa_ledger_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
            &requests,
        );
        let mut latency = Vec::new();
        for (route, l) in lock(&self.latency).iter() {
            let route = escape(route);
            let mut running = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&l.buckets) {
                running += n;
                latency.push(format!(
                    "isa_ledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {running}"
                ));
            }
            latency.push(format!(
                "isa_ledger_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                l.count
            ));
            latency.push(format!(
                "isa_ledger_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                l.sum
            ));
            latency.push(format!(
                "isa_ledger_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                l.count
            ));
        }
        put(
            &mut out,
            "isa_ledger_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by route template.",
            &latency,
        );
        put(
            &mut out,
            "isa_ledger_notice_changes_total",
            "counter",
            "Notice changes (issued, settled) the feed sent to streams and webhooks.",
            &[format!(
                "isa_ledger_notice_changes_total {}",
                self.notice_changes.get()
            )],
        );
        put(
            &mut out,
            "isa_ledger_webhook_failed_attempts_total",
            "counter",
            "Webhook delivery attempts that failed (each is retried until the last).",
            &[format!(
                "isa_ledger_webhook_failed_attempts_total {}",
                self.webhook_failed_attempts.get()
            )],
        );
        put(
            &mut out,
            "isa_ledger_webhook_failed_deliveries_total",
            "counter",
            "Webhook deliveries given up after their last attempt.",
            &[format!(
                "isa_ledger_webhook_failed_deliveries_total {}",
                self.webhook_failed_deliveries.get()
            )],
        );
        out
    }
}

/// One family: its header, then its samples.
fn put(out: &mut String, name: &str, kind: &str, help: &str, samples: &[String]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for s in samples {
        let _ = writeln!(out, "{s}");
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_and_counted_by_route() {
        let m = Metrics::default();
        m.observe("GET", "/v1/views/{view}", 200, Duration::from_millis(3));
        m.observe("GET", "/v1/views/{view}", 200, Duration::from_millis(30));
        m.observe("POST", "/v1/commands", 201, Duration::from_secs(20));
        let text = m.render(&Gauges {
            ledger: ledger::pipeline::stats::PipelineStats::default().snapshot(),
            tree_size: 7,
            views: &[],
        });
        assert!(text.contains(
            "isa_ledger_http_request_duration_seconds_bucket{route=\"/v1/views/{view}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "isa_ledger_http_request_duration_seconds_bucket{route=\"/v1/views/{view}\",le=\"0.05\"} 2"
        ));
        assert!(text.contains(
            "isa_ledger_http_request_duration_seconds_bucket{route=\"/v1/commands\",le=\"10\"} 0"
        ));
        assert!(text.contains(
            "isa_ledger_http_requests_total{method=\"POST\",route=\"/v1/commands\",status=\"201\"} 1"
        ));
        assert!(text.contains("isa_ledger_tree_size 7"));
        // Every sample line belongs to a family declared above it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| declared.contains(*f))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{line}");
            }
        }
    }
}
