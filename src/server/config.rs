//! `zoo.cfg` → typed [`ServerConfig`].
//!
//! The file uses the `java.util.Properties` syntax, like Apache ZooKeeper's: `key=value`, `key: value` or
//! `key value`; `#` and `!` comment lines; a trailing backslash continues a line; `\t`, `\n`, `\uXXXX` and
//! `\X` escapes. Keys and values are trimmed.
//!
//! Apache turns every key its parser does not know into the JVM system property `zookeeper.<key>`, so
//! operators write both `enforceQuota=true` and `zookeeper.enforceQuota=true`. rzk accepts both forms for
//! every key: a leading `zookeeper.` is stripped before the key is looked up. Unlike Apache, rzk also reads
//! `jute.maxbuffer`, `readonlymode.enabled` and `znode.container.*` from zoo.cfg (they are JVM-only flags
//! in Apache).
//!
//! Differences from Apache on purpose:
//! - booleans accept `true`/`false`/`yes`/`no` (any case) for every key, and anything else is an error
//!   (Apache silently reads a typo as `false`, or as `yes` for `forceSync`);
//! - integers may be written in hex (`0xfffff`), as `Integer.getInteger` allows for system properties;
//! - a bad value names the key and its line; an unknown key is a warning in [`ServerConfig::warnings`];
//! - the default 4lw whitelist is every command except the expensive or state-changing ones
//!   (see [`FourLetterWhitelist::rzk_default`]); Apache allows only `srvr`.
//!
//! Parsing is pure: [`ServerConfig::parse`] takes the text, only [`ServerConfig::load`] touches the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The embedded configuration used when no zoo.cfg is given (`make run`). `dataDir` is replaced by the
/// caller's choice in [`ServerConfig::default_standalone`].
pub const DEFAULT_CONFIG: &str = "\
# rzk built-in default configuration (standalone, loopback only)
tickTime=2000
initLimit=10
syncLimit=5
dataDir=./data
clientPort=2181
clientPortAddress=127.0.0.1
";

/// Every four-letter word the server knows, sorted.
pub const ALL_FOUR_LETTER_WORDS: [&str; 20] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs", "csnp", "lgif",
];

/// Four-letter words left out of rzk's default whitelist: the ones that change server state
/// (`crst`, `srst`, `stmk`) or can be expensive on a large server (`dump`, `wchc`, `wchp`).
pub const DEFAULT_DISABLED_FOUR_LETTER_WORDS: [&str; 6] =
    ["crst", "dump", "srst", "stmk", "wchc", "wchp"];

const DEFAULT_TICK_TIME_MS: u32 = 3000;
const DEFAULT_SNAP_RETAIN_COUNT: u32 = 3;
const DEFAULT_METRICS_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// Errors from reading or validating a zoo.cfg. `file` is the source name given to
/// [`ServerConfig::parse`] (the path for [`ServerConfig::load`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {err}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    /// A value that does not parse or is out of range. `key` is spelled as in the file.
    #[error("{file} line {line}: invalid value for {key}: {value:?} ({expected})")]
    InvalidValue {
        file: String,
        line: usize,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{file}: dataDir is not set")]
    DataDirNotSet { file: String },
    #[error("{file} line {line}: tickTime is not set")]
    TickTimeNotSet { file: String, line: usize },
    #[error(
        "{file}: minSessionTimeout must not be larger than maxSessionTimeout \
         (minSessionTimeout={min_ms}, maxSessionTimeout={max_ms})"
    )]
    SessionTimeoutRange {
        file: String,
        min_ms: u32,
        max_ms: u32,
    },
    #[error("{file} line {line}: clientPortAddress is set but clientPort is not set")]
    ClientPortAddressWithoutClientPort { file: String, line: usize },
    /// Any other rejected line (bad escape, bad `server.N` key, unsupported electionAlg, ...).
    #[error("{file} line {line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// `4lw.commands.whitelist`: which four-letter words may run. `srvr` is always allowed (zkServer.sh
/// status needs it), whatever the list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    /// `*`: every command.
    All,
    /// Only these (always contains `srvr`).
    Only(BTreeSet<&'static str>),
}

impl FourLetterWhitelist {
    /// rzk's default when the key is absent: every command except
    /// [`DEFAULT_DISABLED_FOUR_LETTER_WORDS`].
    pub fn rzk_default() -> Self {
        FourLetterWhitelist::Only(
            ALL_FOUR_LETTER_WORDS
                .iter()
                .copied()
                .filter(|c| !DEFAULT_DISABLED_FOUR_LETTER_WORDS.contains(c))
                .collect(),
        )
    }

    /// Parses a whitelist value: names separated by commas and/or whitespace, `*` for all. Names are
    /// case-insensitive. Unknown names are skipped and returned so the caller can warn about them.
    pub fn parse(value: &str) -> (Self, Vec<String>) {
        let mut set = BTreeSet::new();
        let mut unknown = Vec::new();
        let mut all = false;
        for name in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            if name == "*" {
                all = true;
                continue;
            }
            let lower = name.to_ascii_lowercase();
            match ALL_FOUR_LETTER_WORDS.iter().find(|c| **c == lower) {
                Some(c) => {
                    set.insert(*c);
                }
                None => unknown.push(name.to_string()),
            }
        }
        if all {
            return (FourLetterWhitelist::All, unknown);
        }
        set.insert("srvr");
        (FourLetterWhitelist::Only(set), unknown)
    }

    /// Whether `cmd` (e.g. `"ruok"`) may run. `srvr` always may.
    pub fn is_allowed(&self, cmd: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(set) => cmd == "srvr" || set.contains(cmd),
        }
    }

    fn insert(&mut self, cmd: &'static str) {
        if let FourLetterWhitelist::Only(set) = self {
            set.insert(cmd);
        }
    }
}

impl Default for FourLetterWhitelist {
    fn default() -> Self {
        Self::rzk_default()
    }
}

/// `*` or the comma-separated list, as it would be written in zoo.cfg.
impl fmt::Display for FourLetterWhitelist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FourLetterWhitelist::All => f.write_str("*"),
            FourLetterWhitelist::Only(set) => {
                for (i, c) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(c)?;
                }
                Ok(())
            }
        }
    }
}

/// `peerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerType {
    #[default]
    Participant,
    Observer,
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Participant => "participant",
            PeerType::Observer => "observer",
        })
    }
}

/// The typed server configuration. Key names in the field docs are the zoo.cfg spellings; a
/// `zookeeper.` prefix is optional for all of them.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the text came from (file path or `"<built-in default>"`), for messages.
    pub source_name: String,

    // ---- core (QuorumPeerConfig) ----
    /// `tickTime`, ms. 3000 if absent; 0 is an error.
    pub tick_time_ms: u32,
    /// `dataDir` (required). Snapshots live in `<dataDir>/version-2/`.
    pub data_dir: PathBuf,
    /// `dataLogDir`; defaults to `data_dir`. Txn logs live in `<dataLogDir>/version-2/`.
    pub data_log_dir: PathBuf,
    /// `clientPort`; `None` (absent or 0) = no plain client listener.
    pub client_port: Option<u16>,
    /// `clientPortAddress` (IP or host name); `None` = all interfaces. Needs `clientPort`.
    pub client_port_address: Option<String>,
    /// `clientPortListenBacklog`; -1 = OS default.
    pub client_port_listen_backlog: i32,
    /// `maxClientCnxns`: per client IP; 0 = unlimited. Default 60.
    pub max_client_cnxns: u32,
    /// `maxCnxns`: total connections; 0 = unlimited.
    pub max_cnxns: u32,
    /// `minSessionTimeout`, ms; default 2 × tickTime.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout`, ms; default 20 × tickTime.
    pub max_session_timeout_ms: u32,
    /// `autopurge.snapRetainCount` as given (values below 3 are raised to 3). See [`Self::snap_retain_count`].
    pub autopurge_snap_retain_count: Option<u32>,
    /// `autopurge.purgeInterval`, hours; 0 or absent = off. See [`Self::purge_interval_hours`].
    pub autopurge_purge_interval: Option<u32>,
    /// Server id. zoo.cfg does not set it: 0 in standalone; the caller fills it from `<dataDir>/myid`.
    pub server_id: u64,

    // ---- former system properties (`zookeeper.` prefix optional) ----
    /// `globalOutstandingLimit` (1000).
    pub global_outstanding_limit: u32,
    /// `4lw.commands.whitelist`; rzk default is [`FourLetterWhitelist::rzk_default`]. `isro` is added when
    /// `readonlymode.enabled=true`.
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `extendedTypesEnabled` (false): TTL nodes.
    pub extended_types_enabled: bool,
    /// `enforceQuota` (false): quota hard limits.
    pub enforce_quota: bool,
    /// `skipACL` (false / `no`).
    pub skip_acl: bool,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `DigestAuthenticationProvider.enabled` (true).
    pub digest_auth_enabled: bool,
    /// `digest.enabled` (true): tree digest in txn log and proposals.
    pub digest_enabled: bool,
    /// `closeSessionTxn.enabled` (true): closeSession txns list the ephemeral paths.
    pub close_session_txn_enabled: bool,
    /// `snapCount` (100000; values below 2 are raised to 2).
    pub snap_count: u32,
    /// `snapSizeLimitInKb` (4194304); <= 0 disables the size trigger.
    pub snap_size_limit_kb: i64,
    /// `preAllocSize`, **KB** (65536).
    pub pre_alloc_size_kb: u64,
    /// `forceSync` (yes).
    pub force_sync: bool,
    /// `snapshot.compression.method`: `""` (plain), `"gz"` or `"snappy"`.
    pub snapshot_compression_method: String,
    /// `datadir.autocreate` (true).
    pub datadir_autocreate: bool,
    /// `snapshot.trust.empty` (false).
    pub snapshot_trust_empty: bool,

    // ---- JVM-only flags in Apache, zoo.cfg keys in rzk ----
    /// `jute.maxbuffer` (0xfffff): largest accepted frame / buffer.
    pub jute_max_buffer: u32,
    /// `jute.maxbuffer.extrasize` (default max(jute_max_buffer, 1024)).
    pub jute_max_buffer_extra_size: u32,
    /// `readonlymode.enabled` (false).
    pub readonly_mode_enabled: bool,
    /// `znode.container.checkIntervalMs` (60000).
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute` (10000).
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs` (0 = never delete a never-used container).
    pub container_max_never_used_interval_ms: u64,

    // ---- AdminServer and metrics ----
    /// `admin.enableServer` (true).
    pub admin_enable_server: bool,
    /// `admin.serverAddress` ("0.0.0.0").
    pub admin_server_address: String,
    /// `admin.serverPort` (8080).
    pub admin_server_port: u16,
    /// `admin.idleTimeout`, ms (30000).
    pub admin_idle_timeout_ms: u32,
    /// `admin.commandURL` ("/commands").
    pub admin_command_url: String,
    /// `metricsProvider.className` (Apache's DefaultMetricsProvider = no HTTP endpoint).
    pub metrics_provider_class: String,
    /// `metricsProvider.httpHost` ("0.0.0.0").
    pub metrics_host: String,
    /// `metricsProvider.httpPort` (7000).
    pub metrics_port: u16,

    // ---- sessions ----
    /// `localSessionsEnabled` (false).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (false).
    pub local_sessions_upgrading_enabled: bool,

    // ---- quorum (kept, lightly checked) ----
    /// `initLimit`, ticks (0).
    pub init_limit: u32,
    /// `syncLimit`, ticks (0).
    pub sync_limit: u32,
    /// `connectToLearnerMasterLimit`, ticks (0).
    pub connect_to_learner_master_limit: u32,
    /// `server.N=...` lines as (N, raw value), sorted by N.
    pub servers: Vec<(u64, String)>,
    /// `group.N=...` lines as (N, raw value), sorted by N.
    pub groups: Vec<(u64, String)>,
    /// `weight.N=...` lines as (N, raw value), sorted by N.
    pub weights: Vec<(u64, String)>,
    /// `peerType` (participant).
    pub peer_type: PeerType,
    /// `standaloneEnabled` (true).
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (false).
    pub reconfig_enabled: bool,
    /// `dynamicConfigFile`.
    pub dynamic_config_file: Option<PathBuf>,
    /// `electionAlg`: only 3 is accepted.
    pub election_alg: u32,
    /// `quorumListenOnAllIPs` (false).
    pub quorum_listen_on_all_ips: bool,
    /// `electionPortBindRetry` (3; 0 = retry forever).
    pub election_port_bind_retry: u32,
    /// `observerMasterPort`.
    pub observer_master_port: Option<u16>,
    /// `syncEnabled` (true): observers also log and snapshot.
    pub sync_enabled: bool,
    /// `leaderServes` (yes).
    pub leader_serves: bool,
    /// `multiAddress.enabled` (false).
    pub multi_address_enabled: bool,

    /// Every key/value as written in the file (last one wins), for `conf`/`envi`-style output.
    pub raw: BTreeMap<String, String>,
    /// Non-fatal problems (unknown keys, ignored settings, ...), each prefixed with `<file> line N:`.
    /// The caller logs them.
    pub warnings: Vec<String>,
}

impl ServerConfig {
    /// Parses zoo.cfg text. `source_name` is used in messages (e.g. `"zoo.cfg"` or the path).
    pub fn parse(text: &str, source_name: &str) -> Result<ServerConfig, ConfigError> {
        let entries = read_properties(text, source_name)?;
        Builder::new(source_name).build(entries)
    }

    /// Reads and parses a zoo.cfg file.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io {
            path: path.to_path_buf(),
            err,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in standalone configuration ([`DEFAULT_CONFIG`]) with `dataDir` (and so `dataLogDir`)
    /// set to `data_dir`.
    pub fn default_standalone(data_dir: PathBuf) -> ServerConfig {
        let mut cfg =
            Self::parse(DEFAULT_CONFIG, "<built-in default>").expect("DEFAULT_CONFIG is valid");
        cfg.raw
            .insert("dataDir".to_string(), data_dir.display().to_string());
        cfg.data_log_dir = data_dir.clone();
        cfg.data_dir = data_dir;
        cfg
    }

    /// The address to bind the client listener to, e.g. `"127.0.0.1:2181"`, `"[::1]:2181"` or
    /// `"0.0.0.0:2181"` when `clientPortAddress` is absent. `None` when there is no `clientPort`.
    pub fn client_listen_addr(&self) -> Option<String> {
        let port = self.client_port?;
        let host = self.client_port_address.as_deref().unwrap_or("0.0.0.0");
        Some(join_host_port(host, port))
    }

    /// `<dataDir>/version-2`: snapshots (and myid's sibling).
    pub fn snap_dir(&self) -> PathBuf {
        self.data_dir.join("version-2")
    }

    /// `<dataLogDir>/version-2`: txn logs.
    pub fn txn_log_dir(&self) -> PathBuf {
        self.data_log_dir.join("version-2")
    }

    /// Snapshots kept by autopurge (3 unless set higher).
    pub fn snap_retain_count(&self) -> u32 {
        self.autopurge_snap_retain_count
            .unwrap_or(DEFAULT_SNAP_RETAIN_COUNT)
    }

    /// Autopurge interval in hours; 0 = autopurge off. Unlike Apache (never, by default), rzk
    /// purges hourly when zoo.cfg does not say.
    pub fn purge_interval_hours(&self) -> u32 {
        self.autopurge_purge_interval.unwrap_or(1)
    }

    /// Whether `metricsProvider.className` selects the Prometheus provider (HTTP `/metrics` endpoint).
    pub fn prometheus_metrics_enabled(&self) -> bool {
        self.metrics_provider_class
            .ends_with("PrometheusMetricsProvider")
    }

    /// Whether the `server.N` lines describe an ensemble (Apache's rule: more than one participant, or
    /// any server with `standaloneEnabled=false`). Otherwise the server runs standalone.
    pub fn is_quorum(&self) -> bool {
        if self.servers.is_empty() {
            return false;
        }
        let participants = self
            .servers
            .iter()
            .filter(|(_, v)| {
                let addr = v.split(';').next().unwrap_or("").trim();
                !addr.ends_with(":observer")
            })
            .count();
        !self.standalone_enabled || participants > 1
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// ---------------------------------------------------------------------------------------------------
// java.util.Properties reader

/// One `key=value` pair as read, with escapes resolved and both sides trimmed.
#[derive(Debug, Clone)]
struct Entry {
    /// As written (after escape processing).
    key: String,
    value: String,
    /// 1-based line where the logical line starts.
    line: usize,
}

fn is_prop_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Splits text into natural lines on `\n`, `\r\n` or `\r`.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if i + 1 < bytes.len() && bytes[i + 1] == b'\n' {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(&text[start..]);
    }
    out
}

/// A line continues when it ends with an odd number of backslashes.
fn ends_with_continuation(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Reads `java.util.Properties`-style text into entries, in file order (duplicates kept).
fn read_properties(text: &str, file: &str) -> Result<Vec<Entry>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = natural_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let first = lines[i].trim_start_matches(is_prop_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        loop {
            if ends_with_continuation(cur) {
                logical.push_str(&cur[..cur.len() - 1]);
                if i >= lines.len() {
                    break;
                }
                cur = lines[i].trim_start_matches(is_prop_ws);
                i += 1;
            } else {
                logical.push_str(cur);
                break;
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key).map_err(|m| invalid(file, line_no, m))?;
        let value = unescape(value).map_err(|m| invalid(file, line_no, m))?;
        entries.push(Entry {
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            line: line_no,
        });
    }
    Ok(entries)
}

/// Java's rule: the key ends at the first unescaped `=`, `:` or whitespace; then whitespace, at most one
/// `=`/`:`, and more whitespace are skipped.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_sep = false;
    let mut escaped = false;
    for (idx, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = idx;
            value_start = idx + 1;
            has_sep = true;
            break;
        }
        if !escaped && is_prop_ws(c) {
            key_end = idx;
            value_start = idx + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let rest = &line[value_start..];
    let mut skip = 0;
    for (idx, c) in rest.char_indices() {
        if is_prop_ws(c) {
            skip = idx + c.len_utf8();
            continue;
        }
        if !has_sep && (c == '=' || c == ':') {
            has_sep = true;
            skip = idx + 1;
            continue;
        }
        break;
    }
    if rest.chars().all(is_prop_ws) {
        skip = rest.len();
    }
    (&line[..key_end], &rest[skip..])
}

/// Resolves `\t \n \r \f \uXXXX` and `\X` → `X`. A lone trailing backslash is dropped.
fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Reads the 4 hex digits of a `\u` escape whose `u` is at chars[at].
    let hex_unit = |at: usize| -> Result<u16, String> {
        let hex: String = chars.iter().skip(at + 1).take(4).collect();
        if hex.len() == 4
            && let Ok(u) = u16::from_str_radix(&hex, 16)
        {
            return Ok(u);
        }
        Err(format!("malformed \\uxxxx escape: \\u{hex}"))
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = chars.get(i + 1) else { break };
        i += 2;
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let unit = hex_unit(i - 1)?;
                i += 4;
                // Java strings are UTF-16: a pair of surrogate escapes makes one character.
                if (0xD800..0xDC00).contains(&unit)
                    && chars.get(i) == Some(&'\\')
                    && chars.get(i + 1) == Some(&'u')
                    && let Ok(low @ 0xDC00..=0xDFFF) = hex_unit(i + 1)
                {
                    let cp =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                    i += 6;
                    continue;
                }
                out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}'));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn invalid(file: &str, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Typed interpretation

/// Keys (without the optional `zookeeper.` prefix) that rzk understands; used for the unknown-key check's
/// "did you mean" hint. `server.N`, `group.N`, `weight.N` and `metricsProvider.*` are matched by prefix.
const KNOWN_KEYS: &[&str] = &[
    "tickTime",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "clientPortListenBacklog",
    "maxClientCnxns",
    "maxCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "globalOutstandingLimit",
    "4lw.commands.whitelist",
    "extendedTypesEnabled",
    "enforceQuota",
    "skipACL",
    "DigestAuthenticationProvider.superDigest",
    "DigestAuthenticationProvider.enabled",
    "digest.enabled",
    "closeSessionTxn.enabled",
    "snapCount",
    "snapSizeLimitInKb",
    "preAllocSize",
    "forceSync",
    "snapshot.compression.method",
    "datadir.autocreate",
    "snapshot.trust.empty",
    "jute.maxbuffer",
    "jute.maxbuffer.extrasize",
    "readonlymode.enabled",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.idleTimeout",
    "admin.commandURL",
    "admin.httpVersion",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    "metricsProvider.exportJvmInfo",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "peerType",
    "standaloneEnabled",
    "reconfigEnabled",
    "dynamicConfigFile",
    "electionAlg",
    "quorumListenOnAllIPs",
    "electionPortBindRetry",
    "observerMasterPort",
    "syncEnabled",
    "leaderServes",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
];

/// Apache settings rzk recognises but does not implement: accepted with a warning.
const UNSUPPORTED_KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "portUnification",
    "serverCnxnFactory",
    "admin.portUnification",
    "admin.forceHttps",
    "emulate353TTLNodes",
];
const UNSUPPORTED_PREFIXES: &[&str] = &["ssl.", "quorum.auth.", "authProvider."];

/// Strips the optional `zookeeper.` prefix (Apache's system-property form).
fn normalize_key(key: &str) -> &str {
    key.strip_prefix("zookeeper.").unwrap_or(key)
}

/// Integer as Java's `Integer.decode` reads it, minus octal: optional sign, decimal or `0x` hex.
fn parse_int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() {
            return None;
        }
        i128::from_str_radix(hex, 16).ok()?
    } else {
        digits.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

struct Builder<'a> {
    file: &'a str,
    cfg: ServerConfig,
    tick_line: Option<usize>,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    client_port_address_line: Option<usize>,
    min_session_timeout: Option<u32>,
    max_session_timeout: Option<u32>,
    whitelist: Option<FourLetterWhitelist>,
    jute_extra: Option<u32>,
    servers: BTreeMap<u64, String>,
    groups: BTreeMap<u64, String>,
    weights: BTreeMap<u64, String>,
}

impl<'a> Builder<'a> {
    fn new(file: &'a str) -> Self {
        Builder {
            file,
            cfg: ServerConfig {
                source_name: file.to_string(),
                tick_time_ms: DEFAULT_TICK_TIME_MS,
                data_dir: PathBuf::new(),
                data_log_dir: PathBuf::new(),
                client_port: None,
                client_port_address: None,
                client_port_listen_backlog: -1,
                max_client_cnxns: 60,
                max_cnxns: 0,
                min_session_timeout_ms: 0,
                max_session_timeout_ms: 0,
                autopurge_snap_retain_count: None,
                autopurge_purge_interval: None,
                server_id: 0,
                global_outstanding_limit: 1000,
                four_letter_whitelist: FourLetterWhitelist::rzk_default(),
                extended_types_enabled: false,
                enforce_quota: false,
                skip_acl: false,
                super_digest: None,
                digest_auth_enabled: true,
                digest_enabled: true,
                close_session_txn_enabled: true,
                snap_count: 100_000,
                snap_size_limit_kb: 4_194_304,
                pre_alloc_size_kb: 65_536,
                force_sync: true,
                snapshot_compression_method: String::new(),
                datadir_autocreate: true,
                snapshot_trust_empty: false,
                jute_max_buffer: 0xfffff,
                jute_max_buffer_extra_size: 0xfffff,
                readonly_mode_enabled: false,
                container_check_interval_ms: 60_000,
                container_max_per_minute: 10_000,
                container_max_never_used_interval_ms: 0,
                admin_enable_server: true,
                admin_server_address: "0.0.0.0".to_string(),
                admin_server_port: 8080,
                admin_idle_timeout_ms: 30_000,
                admin_command_url: "/commands".to_string(),
                metrics_provider_class: DEFAULT_METRICS_PROVIDER.to_string(),
                metrics_host: "0.0.0.0".to_string(),
                metrics_port: 7000,
                local_sessions_enabled: false,
                local_sessions_upgrading_enabled: false,
                init_limit: 0,
                sync_limit: 0,
                connect_to_learner_master_limit: 0,
                servers: Vec::new(),
                groups: Vec::new(),
                weights: Vec::new(),
                peer_type: PeerType::Participant,
                standalone_enabled: true,
                reconfig_enabled: false,
                dynamic_config_file: None,
                election_alg: 3,
                quorum_listen_on_all_ips: false,
                election_port_bind_retry: 3,
                observer_master_port: None,
                sync_enabled: true,
                leader_serves: true,
                multi_address_enabled: false,
                raw: BTreeMap::new(),
                warnings: Vec::new(),
            },
            tick_line: None,
            data_dir: None,
            data_log_dir: None,
            client_port_address_line: None,
            min_session_timeout: None,
            max_session_timeout: None,
            whitelist: None,
            jute_extra: None,
            servers: BTreeMap::new(),
            groups: BTreeMap::new(),
            weights: BTreeMap::new(),
        }
    }

    fn warn(&mut self, line: usize, msg: impl fmt::Display) {
        self.cfg
            .warnings
            .push(format!("{} line {}: {}", self.file, line, msg));
    }

    fn bad(&self, e: &Entry, expected: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            file: self.file.to_string(),
            line: e.line,
            key: e.key.clone(),
            value: e.value.clone(),
            expected: expected.into(),
        }
    }

    /// An integer in `min..=max`, converted to `T`.
    fn int<T: TryFrom<i128>>(&self, e: &Entry, min: i128, max: i128) -> Result<T, ConfigError> {
        let v = parse_int(&e.value).ok_or_else(|| self.bad(e, "expected an integer"))?;
        if v < min || v > max {
            return Err(self.bad(e, format!("expected an integer between {min} and {max}")));
        }
        T::try_from(v).map_err(|_| self.bad(e, "expected an integer"))
    }

    fn boolean(&self, e: &Entry) -> Result<bool, ConfigError> {
        parse_bool(&e.value).ok_or_else(|| self.bad(e, "expected true, false, yes or no"))
    }

    fn port(&self, e: &Entry) -> Result<u16, ConfigError> {
        self.int(e, 0, u16::MAX as i128)
    }

    /// `server.N` style key → N.
    fn indexed_id(&self, e: &Entry, prefix: &str, n: &str) -> Result<u64, ConfigError> {
        n.parse::<u64>().map_err(|_| {
            invalid(
                self.file,
                e.line,
                format!(
                    "invalid key {}: {n:?} after {prefix} is not a number",
                    e.key
                ),
            )
        })
    }

    fn build(mut self, entries: Vec<Entry>) -> Result<ServerConfig, ConfigError> {
        // java.util.Properties keeps the last value of a key; `x` and `zookeeper.x` are the same key here.
        let mut last: BTreeMap<String, usize> = BTreeMap::new();
        for (idx, e) in entries.iter().enumerate() {
            if let Some(prev) = last.insert(normalize_key(&e.key).to_string(), idx) {
                let p = &entries[prev];
                let msg = format!(
                    "{} overrides {} set on line {} (the last value wins)",
                    e.key, p.key, p.line
                );
                self.warn(e.line, msg);
            }
        }
        for (idx, e) in entries.iter().enumerate() {
            self.cfg.raw.insert(e.key.clone(), e.value.clone());
            if last.get(normalize_key(&e.key)) == Some(&idx) {
                self.apply(e)?;
            }
        }
        self.finish()
    }

    fn apply(&mut self, e: &Entry) -> Result<(), ConfigError> {
        const I32: i128 = i32::MAX as i128;
        let name = normalize_key(&e.key);
        let v = e.value.as_str();
        match name {
            "tickTime" => {
                let t: u32 = self.int(e, 0, I32)?;
                if t == 0 {
                    return Err(ConfigError::TickTimeNotSet {
                        file: self.file.to_string(),
                        line: e.line,
                    });
                }
                self.cfg.tick_time_ms = t;
                self.tick_line = Some(e.line);
            }
            "initLimit" => self.cfg.init_limit = self.int(e, 0, I32)?,
            "syncLimit" => self.cfg.sync_limit = self.int(e, 0, I32)?,
            "connectToLearnerMasterLimit" => {
                self.cfg.connect_to_learner_master_limit = self.int(e, 0, I32)?
            }
            "dataDir" => self.data_dir = (!v.is_empty()).then(|| PathBuf::from(v)),
            "dataLogDir" => self.data_log_dir = (!v.is_empty()).then(|| PathBuf::from(v)),
            "clientPort" => {
                let p = self.port(e)?;
                self.cfg.client_port = (p != 0).then_some(p);
            }
            "clientPortAddress" => {
                if v.is_empty() {
                    self.cfg.client_port_address = None;
                    self.client_port_address_line = None;
                } else {
                    self.cfg.client_port_address =
                        Some(v.trim_start_matches('[').trim_end_matches(']').to_string());
                    self.client_port_address_line = Some(e.line);
                }
            }
            "clientPortListenBacklog" => {
                self.cfg.client_port_listen_backlog = self.int(e, i32::MIN as i128, I32)?
            }
            "maxClientCnxns" => self.cfg.max_client_cnxns = self.int(e, 0, I32)?,
            "maxCnxns" => self.cfg.max_cnxns = self.int(e, 0, I32)?,
            // -1 (or any negative value) means "use the default", as in Apache.
            "minSessionTimeout" => {
                let t: i64 = self.int(e, i32::MIN as i128, I32)?;
                self.min_session_timeout = (t >= 0).then_some(t as u32);
            }
            "maxSessionTimeout" => {
                let t: i64 = self.int(e, i32::MIN as i128, I32)?;
                self.max_session_timeout = (t >= 0).then_some(t as u32);
            }
            "autopurge.snapRetainCount" => {
                let n: u32 = self.int(e, 0, I32)?;
                if n < DEFAULT_SNAP_RETAIN_COUNT {
                    self.warn(
                        e.line,
                        format_args!(
                            "invalid autopurge.snapRetainCount {n}; using {DEFAULT_SNAP_RETAIN_COUNT}"
                        ),
                    );
                }
                self.cfg.autopurge_snap_retain_count = Some(n.max(DEFAULT_SNAP_RETAIN_COUNT));
            }
            "autopurge.purgeInterval" => {
                self.cfg.autopurge_purge_interval = Some(self.int(e, 0, I32)?)
            }
            "globalOutstandingLimit" => self.cfg.global_outstanding_limit = self.int(e, 1, I32)?,
            "4lw.commands.whitelist" => {
                let (wl, unknown) = FourLetterWhitelist::parse(v);
                for u in unknown {
                    self.warn(
                        e.line,
                        format_args!("ignoring unknown four-letter word {u:?} in {}", e.key),
                    );
                }
                self.whitelist = Some(wl);
            }
            "extendedTypesEnabled" => self.cfg.extended_types_enabled = self.boolean(e)?,
            "enforceQuota" => self.cfg.enforce_quota = self.boolean(e)?,
            "skipACL" => self.cfg.skip_acl = self.boolean(e)?,
            "DigestAuthenticationProvider.superDigest" => {
                if !v.is_empty() && !v.contains(':') {
                    self.warn(
                        e.line,
                        format_args!(
                            "{} should look like super:<base64 sha1 digest>; nobody will match it",
                            e.key
                        ),
                    );
                }
                self.cfg.super_digest = (!v.is_empty()).then(|| v.to_string());
            }
            "DigestAuthenticationProvider.enabled" => {
                self.cfg.digest_auth_enabled = self.boolean(e)?
            }
            "digest.enabled" => self.cfg.digest_enabled = self.boolean(e)?,
            "closeSessionTxn.enabled" => self.cfg.close_session_txn_enabled = self.boolean(e)?,
            "snapCount" => {
                let n: u32 = self
                    .int(e, i32::MIN as i128, I32)
                    .map(|n: i64| n.max(0) as u32)?;
                if n < 2 {
                    self.warn(e.line, format_args!("snapCount {v} is too small; using 2"));
                }
                self.cfg.snap_count = n.max(2);
            }
            "snapSizeLimitInKb" => {
                self.cfg.snap_size_limit_kb = self.int(e, i64::MIN as i128, i64::MAX as i128)?
            }
            "preAllocSize" => {
                self.cfg.pre_alloc_size_kb = self.int(e, 1, (i64::MAX / 1024) as i128)?
            }
            "forceSync" => self.cfg.force_sync = self.boolean(e)?,
            "snapshot.compression.method" => match v.to_ascii_lowercase().as_str() {
                m @ ("" | "gz" | "snappy") => self.cfg.snapshot_compression_method = m.to_string(),
                _ => return Err(self.bad(e, "expected gz, snappy or empty")),
            },
            "datadir.autocreate" => self.cfg.datadir_autocreate = self.boolean(e)?,
            "snapshot.trust.empty" => self.cfg.snapshot_trust_empty = self.boolean(e)?,
            "jute.maxbuffer" => self.cfg.jute_max_buffer = self.int(e, 1, I32)?,
            "jute.maxbuffer.extrasize" => self.jute_extra = Some(self.int(e, 0, I32)?),
            "readonlymode.enabled" => self.cfg.readonly_mode_enabled = self.boolean(e)?,
            "znode.container.checkIntervalMs" => {
                self.cfg.container_check_interval_ms = self.int(e, 1, I32)?
            }
            "znode.container.maxPerMinute" => {
                self.cfg.container_max_per_minute = self.int(e, 1, I32)?
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                self.cfg.container_max_never_used_interval_ms = self.int(e, 0, i64::MAX as i128)?
            }
            "admin.enableServer" => self.cfg.admin_enable_server = self.boolean(e)?,
            "admin.serverAddress" => {
                if v.is_empty() {
                    return Err(self.bad(e, "expected an IP address or host name"));
                }
                self.cfg.admin_server_address = v.to_string();
            }
            "admin.serverPort" => self.cfg.admin_server_port = self.port(e)?,
            "admin.idleTimeout" => self.cfg.admin_idle_timeout_ms = self.int(e, 0, I32)?,
            "admin.commandURL" => {
                if !v.starts_with('/') {
                    return Err(self.bad(e, "expected a path starting with /"));
                }
                self.cfg.admin_command_url = v.to_string();
            }
            "admin.httpVersion" => {
                let _: u32 = self.int(e, 0, I32)?;
            }
            "metricsProvider.className" => {
                self.cfg.metrics_provider_class = if v.is_empty() {
                    DEFAULT_METRICS_PROVIDER.to_string()
                } else {
                    v.to_string()
                };
            }
            "metricsProvider.httpHost" => {
                if v.is_empty() {
                    return Err(self.bad(e, "expected an IP address or host name"));
                }
                self.cfg.metrics_host = v.to_string();
            }
            "metricsProvider.httpPort" => self.cfg.metrics_port = self.port(e)?,
            "localSessionsEnabled" => self.cfg.local_sessions_enabled = self.boolean(e)?,
            "localSessionsUpgradingEnabled" => {
                self.cfg.local_sessions_upgrading_enabled = self.boolean(e)?
            }
            "peerType" => {
                self.cfg.peer_type = match v.to_ascii_lowercase().as_str() {
                    "participant" => PeerType::Participant,
                    "observer" => PeerType::Observer,
                    _ => return Err(self.bad(e, "expected participant or observer")),
                }
            }
            "standaloneEnabled" => self.cfg.standalone_enabled = self.boolean(e)?,
            "reconfigEnabled" => self.cfg.reconfig_enabled = self.boolean(e)?,
            "dynamicConfigFile" => {
                self.cfg.dynamic_config_file = (!v.is_empty()).then(|| PathBuf::from(v))
            }
            "electionAlg" => {
                let alg: i64 = self.int(e, i32::MIN as i128, I32)?;
                if alg != 3 {
                    return Err(invalid(
                        self.file,
                        e.line,
                        "Invalid electionAlg value. Only 3 is supported.",
                    ));
                }
                self.cfg.election_alg = 3;
            }
            "quorumListenOnAllIPs" => self.cfg.quorum_listen_on_all_ips = self.boolean(e)?,
            "electionPortBindRetry" => self.cfg.election_port_bind_retry = self.int(e, 0, I32)?,
            "observerMasterPort" => {
                let p = self.port(e)?;
                self.cfg.observer_master_port = (p != 0).then_some(p);
            }
            "syncEnabled" => self.cfg.sync_enabled = self.boolean(e)?,
            "leaderServes" => self.cfg.leader_serves = self.boolean(e)?,
            "multiAddress.enabled" => self.cfg.multi_address_enabled = self.boolean(e)?,
            "multiAddress.reachabilityCheckEnabled" => {
                self.boolean(e)?;
            }
            "multiAddress.reachabilityCheckTimeoutMs" => {
                let _: u32 = self.int(e, 0, I32)?;
            }
            _ => self.apply_other(e, name)?,
        }
        Ok(())
    }

    /// Indexed keys, pass-through prefixes, unsupported and unknown keys.
    fn apply_other(&mut self, e: &Entry, name: &str) -> Result<(), ConfigError> {
        let v = &e.value;
        if let Some(n) = name.strip_prefix("server.") {
            let id = self.indexed_id(e, "server.", n)?;
            if v.is_empty() {
                return Err(self.bad(
                    e,
                    "expected host:quorumPort:electionPort[:role][;[clientHost:]clientPort]",
                ));
            }
            self.servers.insert(id, v.clone());
        } else if let Some(n) = name.strip_prefix("group.") {
            let id = self.indexed_id(e, "group.", n)?;
            self.groups.insert(id, v.clone());
        } else if let Some(n) = name.strip_prefix("weight.") {
            let id = self.indexed_id(e, "weight.", n)?;
            let _: u64 = self.int(e, 0, i64::MAX as i128)?;
            self.weights.insert(id, v.clone());
        } else if name.starts_with("metricsProvider.") {
            // Other provider settings are passed to the provider; kept in `raw`.
        } else if UNSUPPORTED_KEYS.contains(&name)
            || UNSUPPORTED_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            self.warn(
                e.line,
                format_args!("{} is not supported by rzk; ignored", e.key),
            );
        } else {
            let hint = KNOWN_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name))
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            self.warn(e.line, format_args!("unknown key {}{hint}; ignored", e.key));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ServerConfig, ConfigError> {
        let file = self.file.to_string();
        let data_dir = self
            .data_dir
            .take()
            .ok_or(ConfigError::DataDirNotSet { file: file.clone() })?;
        self.cfg.data_log_dir = self.data_log_dir.take().unwrap_or_else(|| data_dir.clone());
        self.cfg.data_dir = data_dir;

        if let (Some(line), None) = (self.client_port_address_line, self.cfg.client_port) {
            return Err(ConfigError::ClientPortAddressWithoutClientPort { file, line });
        }

        let tick = self.cfg.tick_time_ms;
        self.cfg.min_session_timeout_ms =
            self.min_session_timeout.unwrap_or(tick.saturating_mul(2));
        self.cfg.max_session_timeout_ms =
            self.max_session_timeout.unwrap_or(tick.saturating_mul(20));
        if self.cfg.min_session_timeout_ms > self.cfg.max_session_timeout_ms {
            return Err(ConfigError::SessionTimeoutRange {
                file,
                min_ms: self.cfg.min_session_timeout_ms,
                max_ms: self.cfg.max_session_timeout_ms,
            });
        }

        let mut wl = self.whitelist.take().unwrap_or_default();
        if self.cfg.readonly_mode_enabled {
            wl.insert("isro");
        }
        self.cfg.four_letter_whitelist = wl;

        self.cfg.jute_max_buffer_extra_size = self
            .jute_extra
            .unwrap_or_else(|| self.cfg.jute_max_buffer.max(1024));

        self.cfg.servers = std::mem::take(&mut self.servers).into_iter().collect();
        self.cfg.groups = std::mem::take(&mut self.groups).into_iter().collect();
        self.cfg.weights = std::mem::take(&mut self.weights).into_iter().collect();
        Ok(self.cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ServerConfig {
        ServerConfig::parse(text, "zoo.cfg").unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(text: &str) -> String {
        ServerConfig::parse(text, "zoo.cfg")
            .expect_err("expected an error")
            .to_string()
    }

    #[test]
    fn minimal_config_gets_apache_defaults() {
        let c = parse("dataDir=/var/zk\n");
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.data_dir, PathBuf::from("/var/zk"));
        assert_eq!(c.data_log_dir, PathBuf::from("/var/zk"));
        assert_eq!(c.client_port, None);
        assert_eq!(c.client_port_address, None);
        assert_eq!(c.client_listen_addr(), None);
        assert_eq!(c.client_port_listen_backlog, -1);
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.max_cnxns, 0);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert_eq!(c.max_session_timeout_ms, 60000);
        assert_eq!(c.global_outstanding_limit, 1000);
        assert!(!c.extended_types_enabled && !c.enforce_quota && !c.skip_acl);
        assert_eq!(c.super_digest, None);
        assert!(c.digest_auth_enabled && c.digest_enabled && c.close_session_txn_enabled);
        assert_eq!(c.jute_max_buffer, 0xfffff);
        assert_eq!(c.jute_max_buffer_extra_size, 0xfffff);
        assert!(!c.readonly_mode_enabled);
        assert_eq!(c.container_check_interval_ms, 60000);
        assert_eq!(c.container_max_per_minute, 10000);
        assert_eq!(c.container_max_never_used_interval_ms, 0);
        assert_eq!(c.snap_count, 100000);
        assert_eq!(c.pre_alloc_size_kb, 65536);
        assert!(c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, None);
        assert_eq!(c.autopurge_purge_interval, None);
        assert_eq!(c.snap_retain_count(), 3);
        // rzk's safer default: hourly purge when zoo.cfg says nothing.
        assert_eq!(c.purge_interval_hours(), 1);
        assert!(c.admin_enable_server);
        assert_eq!(c.admin_server_address, "0.0.0.0");
        assert_eq!(c.admin_server_port, 8080);
        assert_eq!(c.metrics_port, 7000);
        assert_eq!(c.metrics_host, "0.0.0.0");
        assert!(!c.prometheus_metrics_enabled());
        assert_eq!(c.server_id, 0);
        assert!(!c.local_sessions_enabled);
        assert_eq!(c.election_alg, 3);
        assert_eq!(c.peer_type, PeerType::Participant);
        assert!(c.standalone_enabled);
        assert!(!c.is_quorum());
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::rzk_default());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.snap_dir(), PathBuf::from("/var/zk/version-2"));
    }

    #[test]
    fn builtin_default_is_standalone_on_loopback() {
        let c = ServerConfig::default_standalone(PathBuf::from("/tmp/rzk-data"));
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.client_port_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.client_listen_addr().as_deref(), Some("127.0.0.1:2181"));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/rzk-data"));
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/rzk-data"));
        assert_eq!(c.raw["dataDir"], "/tmp/rzk-data");
        assert_eq!((c.init_limit, c.sync_limit), (10, 5));
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (4000, 40000)
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // The text itself parses with dataDir=./data.
        assert_eq!(parse(DEFAULT_CONFIG).data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn sample_apache_config_parses() {
        let c = parse(
            "# The number of milliseconds of each tick\n\
             tickTime=2000\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir=/tmp/zookeeper\n\
             dataLogDir = /tmp/zk-logs\n\
             clientPort=2181\n\
             #maxClientCnxns=60\n\
             #autopurge.snapRetainCount=3\n\
             autopurge.purgeInterval=1\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort=7001\n\
             metricsProvider.exportJvmInfo=true\n",
        );
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/zk-logs"));
        assert_eq!(c.txn_log_dir(), PathBuf::from("/tmp/zk-logs/version-2"));
        assert_eq!(c.client_listen_addr().as_deref(), Some("0.0.0.0:2181"));
        assert_eq!(c.purge_interval_hours(), 1);
        assert!(c.prometheus_metrics_enabled());
        assert_eq!(c.metrics_port, 7001);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.raw["dataLogDir"], "/tmp/zk-logs");
        assert_eq!(c.raw["metricsProvider.exportJvmInfo"], "true");
    }

    #[test]
    fn prefixed_and_unprefixed_keys_are_the_same_setting() {
        let plain = parse(
            "dataDir=/d\nenforceQuota=true\nextendedTypesEnabled=true\nskipACL=yes\n\
             snapCount=5000\npreAllocSize=1024\nforceSync=no\nglobalOutstandingLimit=7\n\
             digest.enabled=false\ncloseSessionTxn.enabled=false\nmaxCnxns=9\n\
             admin.serverPort=9090\nadmin.enableServer=false\n",
        );
        let prefixed = parse(
            "dataDir=/d\nzookeeper.enforceQuota=true\nzookeeper.extendedTypesEnabled=true\n\
             zookeeper.skipACL=yes\nzookeeper.snapCount=5000\nzookeeper.preAllocSize=1024\n\
             zookeeper.forceSync=no\nzookeeper.globalOutstandingLimit=7\n\
             zookeeper.digest.enabled=false\nzookeeper.closeSessionTxn.enabled=false\n\
             zookeeper.maxCnxns=9\nzookeeper.admin.serverPort=9090\nzookeeper.admin.enableServer=false\n",
        );
        for c in [&plain, &prefixed] {
            assert!(c.enforce_quota && c.extended_types_enabled && c.skip_acl);
            assert_eq!(c.snap_count, 5000);
            assert_eq!(c.pre_alloc_size_kb, 1024);
            assert!(!c.force_sync && !c.digest_enabled && !c.close_session_txn_enabled);
            assert_eq!(c.global_outstanding_limit, 7);
            assert_eq!(c.max_cnxns, 9);
            assert_eq!(c.admin_server_port, 9090);
            assert!(!c.admin_enable_server);
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        assert_eq!(prefixed.raw["zookeeper.enforceQuota"], "true");
    }

    #[test]
    fn later_form_of_the_same_key_wins_with_a_warning() {
        let c = parse("dataDir=/d\nenforceQuota=true\nzookeeper.enforceQuota=false\n");
        assert!(!c.enforce_quota);
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0].starts_with("zoo.cfg line 3:"),
            "{:?}",
            c.warnings
        );
        // A bad value that is overridden later is never looked at, as with java.util.Properties.
        let c = parse("dataDir=/d\ntickTime=0\ntickTime=1000\n");
        assert_eq!(c.tick_time_ms, 1000);
    }

    #[test]
    fn super_digest_in_both_forms() {
        let d = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
        for key in [
            "DigestAuthenticationProvider.superDigest",
            "zookeeper.DigestAuthenticationProvider.superDigest",
        ] {
            let c = parse(&format!("dataDir=/d\n{key}={d}\n"));
            assert_eq!(c.super_digest.as_deref(), Some(d));
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        let c = parse("dataDir=/d\nDigestAuthenticationProvider.enabled=false\n");
        assert!(!c.digest_auth_enabled);
        let c = parse("dataDir=/d\nDigestAuthenticationProvider.superDigest=nocolon\n");
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn jvm_only_flags_are_zoo_cfg_keys_in_rzk() {
        let c = parse(
            "dataDir=/d\njute.maxbuffer=0x200000\nreadonlymode.enabled=true\n\
             znode.container.checkIntervalMs=1000\nzookeeper.znode.container.maxPerMinute=60\n\
             znode.container.maxNeverUsedIntervalMs=30000\n",
        );
        assert_eq!(c.jute_max_buffer, 0x200000);
        assert_eq!(c.jute_max_buffer_extra_size, 0x200000);
        assert!(c.readonly_mode_enabled);
        assert!(c.four_letter_whitelist.is_allowed("isro"));
        assert_eq!(c.container_check_interval_ms, 1000);
        assert_eq!(c.container_max_per_minute, 60);
        assert_eq!(c.container_max_never_used_interval_ms, 30000);
        let c = parse("dataDir=/d\nzookeeper.jute.maxbuffer=4096\n");
        assert_eq!(c.jute_max_buffer, 4096);
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let msg = parse_err("# comment\ndataDir=/d\n\ntickTime=abc\n");
        assert_eq!(
            msg,
            r#"zoo.cfg line 4: invalid value for tickTime: "abc" (expected an integer)"#
        );
        let msg = parse_err("dataDir=/d\nzookeeper.enforceQuota=maybe\n");
        assert_eq!(
            msg,
            r#"zoo.cfg line 2: invalid value for zookeeper.enforceQuota: "maybe" (expected true, false, yes or no)"#
        );
        let msg = parse_err("dataDir=/d\nclientPort=70000\n");
        assert_eq!(
            msg,
            r#"zoo.cfg line 2: invalid value for clientPort: "70000" (expected an integer between 0 and 65535)"#
        );
        let err = ServerConfig::parse("dataDir=/d\nmaxClientCnxns=-1\n", "zoo.cfg").unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { line: 2, ref key, .. } if key == "maxClientCnxns")
        );
    }

    #[test]
    fn required_and_cross_key_errors() {
        assert_eq!(parse_err("tickTime=2000\n"), "zoo.cfg: dataDir is not set");
        assert_eq!(parse_err("dataDir=\n"), "zoo.cfg: dataDir is not set");
        assert_eq!(
            parse_err("dataDir=/d\ntickTime=0\n"),
            "zoo.cfg line 2: tickTime is not set"
        );
        assert_eq!(
            parse_err("dataDir=/d\nclientPortAddress=127.0.0.1\n"),
            "zoo.cfg line 2: clientPortAddress is set but clientPort is not set"
        );
        // clientPort=0 means "not set" in Apache too.
        assert!(matches!(
            ServerConfig::parse(
                "dataDir=/d\nclientPort=0\nclientPortAddress=::1\n",
                "zoo.cfg"
            ),
            Err(ConfigError::ClientPortAddressWithoutClientPort { line: 3, .. })
        ));
        assert!(matches!(
            ServerConfig::parse("dataDir=/d\nelectionAlg=1\n", "zoo.cfg"),
            Err(ConfigError::Invalid { line: 2, .. })
        ));
        assert!(matches!(
            ServerConfig::parse("dataDir=/d\nserver.x=a:1:2\n", "zoo.cfg"),
            Err(ConfigError::Invalid { line: 2, .. })
        ));
    }

    #[test]
    fn session_timeouts() {
        let c = parse("dataDir=/d\ntickTime=1000\nminSessionTimeout=-1\nmaxSessionTimeout=5000\n");
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (2000, 5000)
        );
        // The default max (20 ticks) is checked against an explicit min.
        let err = ServerConfig::parse(
            "dataDir=/d\ntickTime=1000\nminSessionTimeout=30000\n",
            "zoo.cfg",
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::SessionTimeoutRange {
                min_ms: 30000,
                max_ms: 20000,
                ..
            }
        ));
        let msg = parse_err("dataDir=/d\nminSessionTimeout=10\nmaxSessionTimeout=5\n");
        assert!(
            msg.contains("minSessionTimeout must not be larger than maxSessionTimeout"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_is_a_warning() {
        let c = parse("dataDir=/d\nfoo.bar=1\nticktime=5\nsecureClientPort=2281\n");
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert_eq!(
            c.warnings[0],
            "zoo.cfg line 2: unknown key foo.bar; ignored"
        );
        assert!(c.warnings[1].starts_with("zoo.cfg line 3: unknown key ticktime"));
        assert!(c.warnings[1].contains("did you mean tickTime?"));
        assert!(c.warnings[2].contains("secureClientPort is not supported"));
        assert_eq!(c.raw["foo.bar"], "1");
        assert_eq!(c.tick_time_ms, 3000);
    }

    #[test]
    fn every_known_key_is_recognised() {
        for key in KNOWN_KEYS {
            for k in [key.to_string(), format!("zookeeper.{key}")] {
                // Values of the wrong type are errors, never "unknown key" warnings.
                if let Ok(c) = ServerConfig::parse(&format!("dataDir=/d\n{k}=3\n"), "zoo.cfg") {
                    assert!(
                        c.warnings.iter().all(|w| !w.contains("unknown key")),
                        "{k}: {:?}",
                        c.warnings
                    );
                }
            }
        }
    }

    #[test]
    fn whitelist_parsing() {
        let all = parse("dataDir=/d\n4lw.commands.whitelist=*\n").four_letter_whitelist;
        assert_eq!(all, FourLetterWhitelist::All);
        assert!(all.is_allowed("dump") && all.is_allowed("stmk"));
        assert_eq!(all.to_string(), "*");

        let c = parse("dataDir=/d\n4lw.commands.whitelist = stat, ruok ,CONF,, mntr  wchs\n");
        let wl = &c.four_letter_whitelist;
        for cmd in ["stat", "ruok", "conf", "mntr", "wchs", "srvr"] {
            assert!(wl.is_allowed(cmd), "{cmd}");
        }
        for cmd in ["dump", "cons", "envi", "isro"] {
            assert!(!wl.is_allowed(cmd), "{cmd}");
        }
        assert_eq!(wl.to_string(), "conf,mntr,ruok,srvr,stat,wchs");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        // srvr is always on, even with an empty list.
        let c = parse("dataDir=/d\nzookeeper.4lw.commands.whitelist=\n");
        assert_eq!(c.four_letter_whitelist.to_string(), "srvr");
        let c = parse("dataDir=/d\n4lw.commands.whitelist=ruok\n");
        assert!(c.four_letter_whitelist.is_allowed("srvr"));

        // Unknown names are skipped with a warning; `*` anywhere means all.
        let c = parse("dataDir=/d\n4lw.commands.whitelist=ruok,nope\n");
        assert_eq!(c.warnings.len(), 1);
        assert!(!c.four_letter_whitelist.is_allowed("nope"));
        let c = parse("dataDir=/d\n4lw.commands.whitelist=ruok, *\n");
        assert_eq!(c.four_letter_whitelist, FourLetterWhitelist::All);
    }

    #[test]
    fn default_whitelist_leaves_out_expensive_and_mutating_commands() {
        let wl = FourLetterWhitelist::rzk_default();
        for cmd in DEFAULT_DISABLED_FOUR_LETTER_WORDS {
            assert!(!wl.is_allowed(cmd), "{cmd}");
        }
        for cmd in [
            "conf", "cons", "dirs", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srvr", "stat",
            "wchs",
        ] {
            assert!(wl.is_allowed(cmd), "{cmd}");
        }
    }

    #[test]
    fn properties_syntax() {
        let c = parse(
            "! bang comment\n\
             \t  # indented comment\n\
             dataDir : /data/zk\n\
             tickTime 1500\n\
             clientPort   =   2181   \n\
             clientPortAddress=\\\n    \
                 127.0.0.1\n\
             4lw.commands.whitelist=ruok, \\\n\
             \x20   stat, \\\n\
             \x20   conf\n\
             admin.commandURL=/cmd\\u0073\n\
             key\\=with\\:seps=v\n\
             # a comment ending in a backslash does not continue \\\n\
             maxClientCnxns=0\r\n\
             snapCount=0x1000\r\
             initLimit=3\n",
        );
        assert_eq!(c.data_dir, PathBuf::from("/data/zk"));
        assert_eq!(c.tick_time_ms, 1500);
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.client_port_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.four_letter_whitelist.to_string(), "conf,ruok,srvr,stat");
        assert_eq!(c.admin_command_url, "/cmds");
        assert_eq!(c.raw["key=with:seps"], "v");
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!(c.snap_count, 0x1000);
        assert_eq!(c.init_limit, 3);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings); // key=with:seps
    }

    #[test]
    fn key_without_value_is_an_empty_value() {
        let msg = parse_err("dataDir=/d\ninitLimit\n");
        assert_eq!(
            msg,
            r#"zoo.cfg line 2: invalid value for initLimit: "" (expected an integer)"#
        );
    }

    #[test]
    fn continuation_line_error_reports_the_first_line() {
        let msg = parse_err("dataDir=/d\ntickTime=\\\n  12x\n");
        assert_eq!(
            msg,
            r#"zoo.cfg line 2: invalid value for tickTime: "12x" (expected an integer)"#
        );
    }

    #[test]
    fn quorum_keys_are_kept() {
        let c = parse(
            "dataDir=/d\ninitLimit=10\nsyncLimit=5\n\
             server.2=zk2:2888:3888;2181\nserver.1=zk1:2888:3888\nserver.3=zk3:2888:3888:observer\n\
             peerType=observer\nstandaloneEnabled=false\nelectionAlg=3\nquorumListenOnAllIPs=true\n\
             electionPortBindRetry=0\nzookeeper.leaderServes=no\ngroup.1=1:2\nweight.1=1\n",
        );
        assert_eq!(
            c.servers,
            vec![
                (1, "zk1:2888:3888".to_string()),
                (2, "zk2:2888:3888;2181".to_string()),
                (3, "zk3:2888:3888:observer".to_string()),
            ]
        );
        assert_eq!(c.peer_type, PeerType::Observer);
        assert!(!c.standalone_enabled && c.quorum_listen_on_all_ips && !c.leader_serves);
        assert_eq!(c.election_port_bind_retry, 0);
        assert_eq!(c.groups, vec![(1, "1:2".to_string())]);
        assert_eq!(c.weights, vec![(1, "1".to_string())]);
        assert!(c.is_quorum());
        // One participant plus an observer with standaloneEnabled=true stays standalone.
        let c = parse("dataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2:observer\n");
        assert!(!c.is_quorum());
    }

    #[test]
    fn autopurge_and_snap_count_are_clamped() {
        let c = parse("dataDir=/d\nautopurge.snapRetainCount=1\nsnapCount=1\n");
        assert_eq!(c.snap_retain_count(), 3);
        assert_eq!(c.snap_count, 2);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    }

    #[test]
    fn ipv6_client_address() {
        let c = parse("dataDir=/d\nclientPort=2181\nclientPortAddress=::1\n");
        assert_eq!(c.client_listen_addr().as_deref(), Some("[::1]:2181"));
    }

    #[test]
    fn load_reports_missing_file() {
        let err = ServerConfig::load(Path::new("/nonexistent/rzk/zoo.cfg")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/rzk/zoo.cfg"),
            "{err}"
        );
    }

    #[test]
    fn example_file_parses_without_warnings() {
        let text = include_str!("../../zoo.cfg.example");
        let c = parse(text);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Uncommenting every sample setting (`#key=value`) still gives a valid file.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&uncommented);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(c.prometheus_metrics_enabled() && c.is_quorum());
        // ... and it documents every key rzk knows.
        for key in KNOWN_KEYS.iter().chain(UNSUPPORTED_KEYS) {
            assert!(text.contains(key), "zoo.cfg.example does not mention {key}");
        }
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(unescape(r"a\u0041\t\\b").unwrap(), "aA\t\\b");
        assert_eq!(unescape(r"\uD83D\uDE00").unwrap(), "\u{1F600}");
        assert_eq!(unescape(r"\uD83Dx").unwrap(), "\u{fffd}x");
        assert!(unescape(r"\u12").is_err());
        let msg = parse_err("dataDir=/d\nfoo=\\uzzzz\n");
        assert!(msg.starts_with("zoo.cfg line 2: malformed"), "{msg}");
    }
}
