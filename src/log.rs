//! Logging in Redis's format: `pid:role dd Mon yyyy hh:mm:ss.mmm <level> message`, where the
//! level mark is `.` debug, `-` verbose, `*` notice, `#` warning. Harnesses (Redis's own Tcl
//! suite among them) grep these lines, so the shape matters.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer as _;

/// Formats events like Redis's `serverLogRaw`.
pub struct RedisFormat;

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mark = match *event.metadata().level() {
            Level::ERROR | Level::WARN => '#',
            Level::INFO => '*',
            Level::DEBUG => '-',
            Level::TRACE => '.',
        };
        write!(w, "{}:M {} {} ", std::process::id(), timestamp(), mark)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// `22 Nov 2026 10:11:12.345` in local time.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    let ms = now.subsec_millis();
    let mut tm: libc::tm = unsafe_zeroed_tm();
    // SAFETY: localtime_r writes into the `tm` we own and reads `secs`; both outlive the call.
    #[allow(unsafe_code)]
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms
    )
}

fn unsafe_zeroed_tm() -> libc::tm {
    // SAFETY: libc::tm is a plain C struct of integers (and a nullable pointer on glibc), for
    // which all-zero bytes is a valid value.
    #[allow(unsafe_code)]
    unsafe {
        std::mem::zeroed()
    }
}

/// Current verbosity (a `tracing::Level` as 0 = TRACE .. 4 = ERROR), changeable at run time by
/// CONFIG SET loglevel.
static LEVEL: AtomicU8 = AtomicU8::new(2);

fn level_rank(l: &Level) -> u8 {
    match *l {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        Level::ERROR => 4,
    }
}

/// Maps Redis's `loglevel` names to the least severe level that is still written.
fn redis_level(loglevel: &str) -> Level {
    match loglevel {
        "debug" => Level::TRACE,
        "verbose" => Level::DEBUG,
        "notice" => Level::INFO,
        _ => Level::WARN,
    }
}

/// Changes the verbosity of the installed logger (CONFIG SET loglevel).
pub fn set_level(loglevel: &str) {
    LEVEL.store(level_rank(&redis_level(loglevel)), Ordering::Relaxed);
}

/// Installs the global subscriber: stdout, or `logfile` when set. `loglevel` uses Redis's names
/// and can be changed later with [`set_level`].
pub fn init(loglevel: &str, logfile: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    set_level(loglevel);
    let filter = tracing_subscriber::filter::filter_fn(|meta| {
        level_rank(meta.level()) >= LEVEL.load(Ordering::Relaxed)
    });
    let layer = tracing_subscriber::fmt::layer().event_format(RedisFormat);
    if logfile.is_empty() {
        let layer = layer.with_writer(LineStdout).with_filter(filter);
        let _ = tracing_subscriber::registry().with(layer).try_init();
        return;
    }
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logfile)
    {
        Ok(f) => {
            let layer = layer
                .with_writer(std::sync::Mutex::new(f))
                .with_filter(filter);
            let _ = tracing_subscriber::registry().with(layer).try_init();
        }
        Err(e) => {
            eprintln!("Can't open the log file: {}", io_reason(&e));
            std::process::exit(1);
        }
    }
}

/// The `strerror` part of an I/O error.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or_default().to_string()
}

/// Stdout writer that flushes every line, so harnesses tailing our log see lines at once.
struct LineStdout;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineStdout {
    type Writer = LineStdoutWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineStdoutWriter
    }
}

struct LineStdoutWriter;

impl Write for LineStdoutWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}
