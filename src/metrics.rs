//! Counters and one histogram for `GET /metrics` (Prometheus text format 0.0.4).
//!
//! Recorded: HTTP requests by endpoint and status, tool calls by tool and outcome, the latency
//! of Kimai requests, and requests refused by the rate limit and the enumeration guard. Open
//! sessions by transport are read from the session table when the page is rendered. Label
//! values are fixed strings from our own code (endpoint names, tool names, outcomes), never
//! anything a client sent, so the label sets stay small and nothing secret can appear.
//!
//! Threads: every request thread records; one lock per family, held for a map update only.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the Kimai latency buckets, in seconds.
pub const KIMAI_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; KIMAI_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    tool_calls: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    kimai: Mutex<Histogram>,
    rate_limited: Mutex<u64>,
    enumeration_blocked: Mutex<u64>,
    enumeration_misses: Mutex<u64>,
    oauth: Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One HTTP request; `endpoint` is one of our route names.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        *lock(&self.requests).entry((endpoint, status)).or_default() += 1;
    }

    /// One tool call; `outcome` is `ok`, `error` or `cancelled`.
    pub fn tool_call(&self, tool: &'static str, outcome: &'static str) {
        *lock(&self.tool_calls).entry((tool, outcome)).or_default() += 1;
    }

    /// The duration of one request to Kimai (answered or failed).
    pub fn kimai_request(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let mut h = lock(&self.kimai);
        for (i, le) in KIMAI_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn rate_limited(&self) {
        *lock(&self.rate_limited) += 1;
    }

    pub fn enumeration_blocked(&self) {
        *lock(&self.enumeration_blocked) += 1;
    }

    pub fn enumeration_miss(&self) {
        *lock(&self.enumeration_misses) += 1;
    }

    /// One OAuth event: `register`, `sign_in`, `sign_in_failed`, `code`, `refresh`,
    /// `token_error`.
    pub fn oauth(&self, event: &'static str) {
        *lock(&self.oauth).entry(event).or_default() += 1;
    }

    /// The page; `sessions` are the open sessions by transport.
    pub fn render(&self, sessions: &[(&str, usize)]) -> String {
        let mut o = String::new();
        o.push_str("# HELP kimai_mcp_http_requests_total HTTP requests by endpoint and status.\n# TYPE kimai_mcp_http_requests_total counter\n");
        for ((endpoint, status), n) in lock(&self.requests).iter() {
            o.push_str(&format!(
                "kimai_mcp_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n"
            ));
        }
        o.push_str("# HELP kimai_mcp_tool_calls_total Tool calls by tool and outcome.\n# TYPE kimai_mcp_tool_calls_total counter\n");
        for ((tool, outcome), n) in lock(&self.tool_calls).iter() {
            o.push_str(&format!(
                "kimai_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        o.push_str("# HELP kimai_mcp_kimai_request_duration_seconds Duration of requests to Kimai.\n# TYPE kimai_mcp_kimai_request_duration_seconds histogram\n");
        {
            let h = lock(&self.kimai);
            for (i, le) in KIMAI_BUCKETS.iter().enumerate() {
                o.push_str(&format!(
                    "kimai_mcp_kimai_request_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
                    h.counts[i]
                ));
            }
            o.push_str(&format!(
                "kimai_mcp_kimai_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
                h.count
            ));
            o.push_str(&format!(
                "kimai_mcp_kimai_request_duration_seconds_sum {}\n",
                h.sum
            ));
            o.push_str(&format!(
                "kimai_mcp_kimai_request_duration_seconds_count {}\n",
                h.count
            ));
        }
        o.push_str("# HELP kimai_mcp_sessions Open sessions by transport.\n# TYPE kimai_mcp_sessions gauge\n");
        for (transport, n) in sessions {
            o.push_str(&format!(
                "kimai_mcp_sessions{{transport=\"{transport}\"}} {n}\n"
            ));
        }
        o.push_str("# HELP kimai_mcp_rate_limited_total Requests refused by the per-address rate limit.\n# TYPE kimai_mcp_rate_limited_total counter\n");
        o.push_str(&format!(
            "kimai_mcp_rate_limited_total {}\n",
            lock(&self.rate_limited)
        ));
        o.push_str("# HELP kimai_mcp_enumeration_blocked_total Requests refused because the address guessed too many slugs.\n# TYPE kimai_mcp_enumeration_blocked_total counter\n");
        o.push_str(&format!(
            "kimai_mcp_enumeration_blocked_total {}\n",
            lock(&self.enumeration_blocked)
        ));
        o.push_str("# HELP kimai_mcp_unknown_slugs_total Requests for a slug that is not in users.json.\n# TYPE kimai_mcp_unknown_slugs_total counter\n");
        o.push_str(&format!(
            "kimai_mcp_unknown_slugs_total {}\n",
            lock(&self.enumeration_misses)
        ));
        let oauth = lock(&self.oauth);
        if !oauth.is_empty() {
            o.push_str("# HELP kimai_mcp_oauth_events_total OAuth registrations, sign-ins and token requests by outcome.\n# TYPE kimai_mcp_oauth_events_total counter\n");
            for (event, n) in oauth.iter() {
                o.push_str(&format!(
                    "kimai_mcp_oauth_events_total{{event=\"{event}\"}} {n}\n"
                ));
            }
        }
        o
    }
}

/// The server counts the use of every account it serves.
impl crate::kimai::Usage for Metrics {
    fn kimai_request(&self, took: Duration) {
        Metrics::kimai_request(self, took);
    }

    fn tool_call(&self, tool: &'static str, outcome: &'static str) {
        Metrics::tool_call(self, tool, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::new();
        m.request("mcp", 200);
        m.request("mcp", 200);
        m.request("health", 429);
        m.tool_call("timesheet", "ok");
        m.kimai_request(Duration::from_millis(3));
        m.kimai_request(Duration::from_millis(300));
        m.rate_limited();
        let page = m.render(&[("streamable-http", 2), ("sse", 1)]);
        assert!(
            page.contains("kimai_mcp_http_requests_total{endpoint=\"mcp\",status=\"200\"} 2\n"),
            "{page}"
        );
        assert!(page.contains("kimai_mcp_tool_calls_total{tool=\"timesheet\",outcome=\"ok\"} 1\n"));
        assert!(page.contains("kimai_mcp_kimai_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(page.contains("kimai_mcp_kimai_request_duration_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(page.contains("kimai_mcp_kimai_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(page.contains("kimai_mcp_sessions{transport=\"sse\"} 1\n"));
        assert!(page.contains("kimai_mcp_rate_limited_total 1\n"));
    }
}
