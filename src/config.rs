//! Server configuration: one parameter table serves the config file, `--name value` flags,
//! CONFIG GET, CONFIG SET and CONFIG REWRITE, with Redis's names, defaults, units and errors.
//!
//! Values live in typed fields of [`Config`] so the hot path reads them without lookups; the
//! table in [`PARAMS`] gives each field its name, kind and accessors.

use std::fmt::Write as _;

/// How a parameter's value is written and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Integer within bounds; `memory` accepts units such as `1gb`, `100mb`.
    Int { min: i64, max: i64, memory: bool },
    Enum(&'static [&'static str]),
    Str,
    /// Parsed by its own setter (save points, bind lists, ...).
    Special,
}

pub const IMMUTABLE: u32 = 1;
pub const SENSITIVE: u32 = 1 << 1;
pub const PROTECTED: u32 = 1 << 2;
pub const HIDDEN: u32 = 1 << 3;

/// One configuration parameter.
pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub flags: u32,
    pub get: fn(&Config) -> String,
    /// Parses and stores a value; the error is the reason Redis gives (without the
    /// "CONFIG SET failed" prefix).
    pub set: fn(&mut Config, &str) -> Result<(), String>,
}

/// Every configuration value.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: i64,
    pub bind: Vec<String>,
    pub dir: String,
    pub dbfilename: String,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appenddirname: String,
    pub appendfsync: String,
    pub requirepass: String,
    pub databases: i64,
    pub maxclients: i64,
    pub timeout: i64,
    pub tcp_keepalive: i64,
    pub tcp_backlog: i64,
    pub loglevel: String,
    pub logfile: String,
    pub save: Vec<(i64, i64)>,
    pub maxmemory: i64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: i64,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: i64,
    pub hz: i64,
    pub daemonize: bool,
    pub protected_mode: bool,
    pub enable_debug_command: String,
    pub pidfile: String,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    pub active_expire_enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            port: 0,
            bind: Vec::new(),
            dir: String::new(),
            dbfilename: String::new(),
            appendonly: false,
            appendfilename: String::new(),
            appenddirname: String::new(),
            appendfsync: String::new(),
            requirepass: String::new(),
            databases: 0,
            maxclients: 0,
            timeout: 0,
            tcp_keepalive: 0,
            tcp_backlog: 0,
            loglevel: String::new(),
            logfile: String::new(),
            save: Vec::new(),
            maxmemory: 0,
            maxmemory_policy: String::new(),
            maxmemory_samples: 0,
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            hz: 0,
            daemonize: false,
            protected_mode: false,
            enable_debug_command: String::new(),
            pidfile: String::new(),
            lazyfree_lazy_expire: false,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            active_expire_enabled: true,
        };
        for p in PARAMS {
            (p.set)(&mut c, p.default).expect("parameter defaults are valid");
        }
        c.dir = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        c
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Parses a memory amount with Redis's units (`1k` = 1000, `1kb` = 1024, ..., case-insensitive).
pub fn parse_memory(v: &str) -> Option<i64> {
    let lower = v.to_ascii_lowercase();
    let units: [(&str, i64); 7] = [
        ("gb", 1024 * 1024 * 1024),
        ("mb", 1024 * 1024),
        ("kb", 1024),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            let n: i64 = crate::util::num::parse_i64(num.as_bytes())?;
            return n.checked_mul(mul);
        }
    }
    crate::util::num::parse_i64(lower.as_bytes())
}

fn parse_int(v: &str, min: i64, max: i64, memory: bool) -> Result<i64, String> {
    let n = if memory { parse_memory(v) } else { crate::util::num::parse_i64(v.as_bytes()) };
    let Some(n) = n else {
        return Err("argument couldn't be parsed into an integer".into());
    };
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

fn parse_enum(v: &str, allowed: &[&str]) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    if allowed.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!("argument(s) must be one of the following: {}", allowed.join(", ")))
    }
}

fn save_to_string(points: &[(i64, i64)]) -> String {
    let mut s = String::new();
    for (i, (secs, changes)) in points.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{secs} {changes}");
    }
    s
}

fn parse_save(v: &str) -> Result<Vec<(i64, i64)>, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    if parts.len() % 2 != 0 {
        return Err("Invalid save parameters".into());
    }
    let mut out = Vec::new();
    for pair in parts.chunks(2) {
        let secs = crate::util::num::parse_i64(pair[0].as_bytes());
        let changes = crate::util::num::parse_i64(pair[1].as_bytes());
        match (secs, changes) {
            (Some(s), Some(c)) if s >= 1 && c >= 0 => out.push((s, c)),
            _ => return Err("Invalid save parameters".into()),
        }
    }
    Ok(out)
}

macro_rules! bool_param {
    ($name:literal, $field:ident, $default:literal, $flags:expr) => {
        Param {
            name: $name,
            alias: None,
            kind: Kind::Bool,
            default: $default,
            flags: $flags,
            get: |c| yes_no(c.$field),
            set: |c, v| {
                c.$field = parse_bool(v)?;
                Ok(())
            },
        }
    };
}

macro_rules! int_param {
    ($name:literal, $field:ident, $min:expr, $max:expr, $mem:expr, $default:literal, $flags:expr) => {
        Param {
            name: $name,
            alias: None,
            kind: Kind::Int { min: $min, max: $max, memory: $mem },
            default: $default,
            flags: $flags,
            get: |c| c.$field.to_string(),
            set: |c, v| {
                c.$field = parse_int(v, $min, $max, $mem)?;
                Ok(())
            },
        }
    };
}

macro_rules! str_param {
    ($name:literal, $field:ident, $default:literal, $flags:expr) => {
        Param {
            name: $name,
            alias: None,
            kind: Kind::Str,
            default: $default,
            flags: $flags,
            get: |c| c.$field.clone(),
            set: |c, v| {
                c.$field = v.to_string();
                Ok(())
            },
        }
    };
}

macro_rules! enum_param {
    ($name:literal, $field:ident, $allowed:expr, $default:literal, $flags:expr) => {
        Param {
            name: $name,
            alias: None,
            kind: Kind::Enum($allowed),
            default: $default,
            flags: $flags,
            get: |c| c.$field.clone(),
            set: |c, v| {
                c.$field = parse_enum(v, $allowed)?;
                Ok(())
            },
        }
    };
}

const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// The parameter table, in Redis's names.
pub static PARAMS: &[Param] = &[
    int_param!("port", port, 0, 65535, false, "6379", 0),
    Param {
        name: "bind",
        alias: None,
        kind: Kind::Special,
        default: "* -::*",
        flags: 0,
        get: |c| c.bind.join(" "),
        set: |c, v| {
            c.bind = v.split_whitespace().map(str::to_string).collect();
            Ok(())
        },
    },
    str_param!("dir", dir, "", 0),
    str_param!("dbfilename", dbfilename, "dump.rdb", PROTECTED),
    bool_param!("appendonly", appendonly, "no", 0),
    str_param!("appendfilename", appendfilename, "appendonly.aof", IMMUTABLE),
    str_param!("appenddirname", appenddirname, "appendonlydir", IMMUTABLE),
    enum_param!("appendfsync", appendfsync, &["always", "everysec", "no"], "everysec", 0),
    str_param!("requirepass", requirepass, "", SENSITIVE),
    int_param!("databases", databases, 1, i32::MAX as i64, false, "16", IMMUTABLE),
    int_param!("maxclients", maxclients, 1, u32::MAX as i64, false, "10000", 0),
    int_param!("timeout", timeout, 0, i32::MAX as i64, false, "0", 0),
    int_param!("tcp-keepalive", tcp_keepalive, 0, i32::MAX as i64, false, "300", 0),
    int_param!("tcp-backlog", tcp_backlog, 0, i32::MAX as i64, false, "511", IMMUTABLE),
    enum_param!(
        "loglevel",
        loglevel,
        &["debug", "verbose", "notice", "warning", "nothing"],
        "notice",
        0
    ),
    str_param!("logfile", logfile, "", IMMUTABLE),
    Param {
        name: "save",
        alias: None,
        kind: Kind::Special,
        default: "3600 1 300 100 60 10000",
        flags: 0,
        get: |c| save_to_string(&c.save),
        set: |c, v| {
            c.save = parse_save(v)?;
            Ok(())
        },
    },
    int_param!("maxmemory", maxmemory, 0, i64::MAX, true, "0", 0),
    enum_param!("maxmemory-policy", maxmemory_policy, MAXMEMORY_POLICIES, "noeviction", 0),
    int_param!("maxmemory-samples", maxmemory_samples, 1, i32::MAX as i64, false, "5", 0),
    int_param!("proto-max-bulk-len", proto_max_bulk_len, 1024 * 1024, i64::MAX, true, "536870912", 0),
    int_param!(
        "client-query-buffer-limit",
        client_query_buffer_limit,
        1024 * 1024,
        i64::MAX,
        true,
        "1073741824",
        0
    ),
    int_param!("hz", hz, 0, i32::MAX as i64, false, "10", 0),
    bool_param!("daemonize", daemonize, "no", IMMUTABLE),
    bool_param!("protected-mode", protected_mode, "yes", 0),
    enum_param!("enable-debug-command", enable_debug_command, &["no", "yes", "local"], "no", IMMUTABLE),
    str_param!("pidfile", pidfile, "", IMMUTABLE),
    bool_param!("lazyfree-lazy-expire", lazyfree_lazy_expire, "no", 0),
    bool_param!("lazyfree-lazy-user-del", lazyfree_lazy_user_del, "no", 0),
    bool_param!("lazyfree-lazy-user-flush", lazyfree_lazy_user_flush, "no", 0),
];

/// Finds a parameter by name or alias, case-insensitively.
pub fn find_param(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    PARAMS.iter().find(|p| p.name == lower || p.alias == Some(lower.as_str()))
}

impl Config {
    /// Applies the text of a redis.conf-style file (also used for command-line overrides,
    /// which Redis turns into config lines). Unknown directives are errors, as in Redis.
    pub fn apply_text(&mut self, text: &str) -> Result<(), String> {
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = crate::protocol::inline::split_args(line.as_bytes())
                .ok_or_else(|| format!("line {}: unbalanced quotes", lineno + 1))?;
            if args.is_empty() {
                continue;
            }
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let values: Vec<String> =
                args[1..].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let Some(p) = find_param(&name) else {
                return Err(format!(
                    "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line {}\n>>> '{}'\nBad directive or wrong number of arguments",
                    lineno + 1,
                    line
                ));
            };
            let value = values.join(" ");
            (p.set)(self, &value).map_err(|e| {
                format!(
                    "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                    lineno + 1,
                    line,
                    e
                )
            })?;
        }
        Ok(())
    }

    /// Builds a config from redis-server's command line: an optional config file path, then
    /// `--name value...` overrides.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config::default();
        let mut i = 0;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                cfg.apply_text(&text)?;
                i = 1;
            }
        }
        let mut lines = String::new();
        while i < args.len() {
            let a = &args[i];
            if let Some(name) = a.strip_prefix("--") {
                if !lines.is_empty() {
                    lines.push('\n');
                }
                lines.push_str(name);
            } else {
                lines.push(' ');
                lines.push_str(&quote_arg(a));
            }
            i += 1;
        }
        cfg.apply_text(&lines)?;
        if cfg.dir.is_empty() {
            cfg.dir = ".".into();
        }
        Ok(cfg)
    }
}

/// Quotes an argument so `split_args` gives it back unchanged (empty strings included).
fn quote_arg(a: &str) -> String {
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_overrides_defaults() {
        let args: Vec<String> =
            ["--port", "7001", "--save", "", "--maxmemory", "1gb", "--bind", "127.0.0.1", "::1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let c = Config::from_args(&args).unwrap();
        assert_eq!(c.port, 7001);
        assert!(c.save.is_empty());
        assert_eq!(c.maxmemory, 1024 * 1024 * 1024);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.databases, 16);
    }

    #[test]
    fn memory_units_match_redis() {
        assert_eq!(parse_memory("100mb"), Some(100 * 1024 * 1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("x"), None);
    }
}
