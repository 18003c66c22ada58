//! Prometheus metrics: `GET /metrics` on `metricsProvider.httpHost:metricsProvider.httpPort`
//! (default 0.0.0.0:7000), in the Prometheus text exposition format 0.0.4.
//!
//! Names are Apache's PrometheusMetricsProvider names (the `mntr` keys without `zk_`, e.g.
//! `znode_count`, `num_alive_connections`, `packets_received`), all gauges as in Apache, values
//! printed like Java's simpleclient (`5.0`). rzk adds the standard `process_*` metrics of the
//! Prometheus clients (open fds, resident memory, CPU seconds, start time) in place of Apache's
//! JVM metrics (`metricsProvider.exportJvmInfo`).
//!
//! When it is on: Apache serves `/metrics` only with
//! `metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider`.
//! rzk serves it by default too: it is on unless `metricsProvider.className` names some other
//! provider (e.g. Apache's `DefaultMetricsProvider`); see [`enabled`]. When the Prometheus provider was asked for explicitly, a port that cannot be bound
//! stops the server (as in Apache); when it is only rzk's default, a warning is logged and the
//! server runs without metrics.

use super::four_letter::{self, java_double, Context};
use super::Shared;
use crate::engine::Engine;
use crate::server::admin::{bind_http, response, serve_http};
use crate::server::config::ServerConfig;
use hyper::{Method, StatusCode};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Help text for Apache's gauges (the `mntr` keys).
const HELP: &[(&str, &str)] = &[
    ("avg_latency", "Average request latency in ms since the last stat reset"),
    ("max_latency", "Maximum request latency in ms since the last stat reset"),
    ("min_latency", "Minimum request latency in ms since the last stat reset"),
    ("packets_received", "Packets received from clients since the last stat reset"),
    ("packets_sent", "Packets sent to clients since the last stat reset"),
    ("num_alive_connections", "Open client connections"),
    ("outstanding_requests", "Requests received and not yet answered"),
    ("uptime", "Time in ms since the server started"),
    ("znode_count", "Number of znodes (Apache counts the root twice: a new server reports 5)"),
    ("watch_count", "Number of watches (data and child tables)"),
    ("ephemerals_count", "Number of ephemeral znodes"),
    ("approximate_data_size", "Sum of path lengths and data lengths of all znodes, in bytes"),
    ("global_sessions", "Number of global sessions"),
    ("local_sessions", "Number of local sessions"),
    ("open_file_descriptor_count", "Open file descriptors of the server process"),
    ("max_file_descriptor_count", "File descriptor limit of the server process (-1: unlimited)"),
    ("connection_drop_probability", "Probability that a new connection is dropped by throttling"),
    ("last_client_response_size", "Size of the last response sent to a client in bytes (-1: no data)"),
    ("max_client_response_size", "Largest response sent to a client in bytes (-1: no data)"),
    ("min_client_response_size", "Smallest response sent to a client in bytes (-1: no data)"),
    ("outstanding_tls_handshake", "TLS handshakes in progress"),
    ("auth_failed_count", "Failed authentication attempts"),
    ("non_mtls_remote_conn_count", "Remote connections without mutual TLS"),
    ("non_mtls_local_conn_count", "Local connections without mutual TLS"),
];

fn help_for(name: &str) -> String {
    HELP.iter().find(|(n, _)| *n == name).map_or_else(|| name.replace('_', " "), |(_, h)| h.to_string())
}

/// Whether rzk serves `/metrics`: on unless `metricsProvider.className` is set to a provider that
/// is not Prometheus. Returns (enabled, explicitly asked for).
pub fn enabled(config: &ServerConfig) -> (bool, bool) {
    let explicit = config.raw.keys().any(|k| k.trim_start_matches("zookeeper.") == "metricsProvider.className");
    if config.prometheus_metrics_enabled() {
        (true, explicit)
    } else {
        (!explicit, false)
    }
}

fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {}", java_double(value));
}

/// The `/metrics` text for the engine's current state.
pub fn render(engine: &mut Engine, config: &ServerConfig, now: crate::engine::Now, start_mono_ms: u64, listen_port: Option<u16>, fsync: Option<super::FsyncStats>) -> String {
    let mut mask = 0i64;
    let mut ctx = Context {
        engine,
        config,
        now,
        start_mono_ms,
        requester: None,
        listen_port,
        trace_mask: &mut mask,
        digest_log: &[],
        quorum: None,
        fsync,
    };
    let mntr = four_letter::run("mntr", &mut ctx);
    let mut out = String::new();
    for line in mntr.lines() {
        let Some((k, v)) = line.split_once('\t') else { continue };
        let name = k.strip_prefix("zk_").unwrap_or(k);
        // String values (version, server_state) are not metrics.
        let Ok(value) = v.parse::<f64>() else { continue };
        if !v.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-') {
            continue;
        }
        write_metric(&mut out, name, "gauge", &help_for(name), value);
    }
    process_metrics(&mut out);
    out
}

/// The Prometheus clients' standard process metrics, from `/proc/self`.
fn process_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { return };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // Field numbers in proc(5) are 1-based and count pid and comm: index = number - 3.
    if let (Some(utime), Some(stime)) = (num(14 - 3), num(15 - 3)) {
        write_metric(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (utime + stime) / ticks);
    }
    if let Some(rss) = num(24 - 3) {
        write_metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss * page);
    }
    if let Some(vsize) = num(23 - 3) {
        write_metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("btime ")).and_then(|l| l[6..].trim().parse::<f64>().ok()));
    if let (Some(start), Some(boot)) = (num(22 - 3), boot) {
        write_metric(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", boot + start / ticks);
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        write_metric(out, "process_open_fds", "gauge", "Number of open file descriptors.", (d.count() as f64 - 1.0).max(0.0));
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l["Max open files".len()..].split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
    });
    if let Some(m) = max_fds {
        write_metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", m);
    }
}

/// The metrics listener: `Ok(None)` when metrics are off or (with a warning) when rzk's default
/// port cannot be bound; `Err` when the Prometheus provider was configured explicitly and its
/// port cannot be bound (Apache fails to start then too).
pub async fn bind(config: &ServerConfig) -> std::io::Result<Option<TcpListener>> {
    let (on, explicit) = enabled(config);
    if !on {
        return Ok(None);
    }
    match bind_http(&config.metrics_host, config.metrics_port).await {
        Ok(l) => {
            if let Ok(a) = l.local_addr() {
                tracing::info!("Prometheus metrics on http://{a}/metrics");
            }
            Ok(Some(l))
        }
        Err(e) if explicit => Err(std::io::Error::new(e.kind(), format!("cannot start the Prometheus metrics endpoint: {e}"))),
        Err(e) => {
            tracing::warn!(
                "cannot start the Prometheus metrics endpoint: {e}; serving clients without it \
                 (set metricsProvider.httpPort, or metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider to turn it off)"
            );
            Ok(None)
        }
    }
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    serve_http(listener, Duration::from_secs(30), move |method, path, _query| {
        if method != Method::GET && method != Method::HEAD {
            return response(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET is supported\n");
        }
        if path != "/metrics" {
            return response(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: metrics are at /metrics\n");
        }
        let now = shared.now();
        let text = {
            let mut st = shared.lock();
            render(&mut st.engine, &shared.config, now, shared.start_wall_ms() as u64, shared.listen_port, Some(shared.fsyncs.lock().clone()))
        };
        response(StatusCode::OK, CONTENT_TYPE, text)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineConfig, Now};

    #[test]
    fn renders_apache_gauges_with_help_and_type() {
        let dir = std::env::temp_dir().join(format!("rzk-metrics-{}", std::process::id()));
        let config = ServerConfig::default_standalone(dir.clone());
        let now = Now { mono_ms: 1_000_000, wall_ms: 1_795_368_777_264 };
        let mut engine = Engine::new(EngineConfig::from_server_config(&config), now);
        let text = render(&mut engine, &config, now, now.mono_ms, Some(2181), None);
        assert!(text.contains("# HELP znode_count "), "{text}");
        assert!(text.contains("# TYPE znode_count gauge\nznode_count 5.0\n"), "{text}");
        assert!(text.contains("\nnum_alive_connections 0.0\n"));
        assert!(text.contains("\nmax_client_response_size -1.0\n"));
        assert!(!text.contains("server_state"));
        assert!(!text.contains("version"));
        if cfg!(target_os = "linux") {
            assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
            assert!(text.contains("\nprocess_open_fds "));
        }
        // Every sample line has a HELP and TYPE before it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.starts_with('#') {
                assert!(lines[i - 1].starts_with("# TYPE ") && lines[i - 2].starts_with("# HELP "), "{l}");
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn enabled_by_default_unless_another_provider_is_named() {
        let c = ServerConfig::parse("dataDir=/tmp/x\nclientPort=1\n", "t").unwrap();
        assert_eq!(enabled(&c), (true, false));
        let c = ServerConfig::parse(
            "dataDir=/tmp/x\nclientPort=1\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n",
            "t",
        )
        .unwrap();
        assert_eq!(enabled(&c), (true, true));
        let c = ServerConfig::parse(
            "dataDir=/tmp/x\nclientPort=1\nmetricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n",
            "t",
        )
        .unwrap();
        assert_eq!(enabled(&c), (false, false));
    }
}
