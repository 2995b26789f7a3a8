//! Logging in Redis's format: `pid:role dd Mon yyyy hh:mm:ss.mmm <level> message`, where the
//! level mark is `.` debug, `-` verbose, `*` notice, `#` warning. Harnesses (Redis's own Tcl
//! suite among them) grep these lines, so the shape matters.

use std::fmt;
use std::io::Write;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
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

/// Installs the global subscriber: stdout, or `logfile` when set. `loglevel` uses Redis's names.
pub fn init(loglevel: &str, logfile: &str) {
    let level = match loglevel {
        "debug" => Level::TRACE,
        "verbose" => Level::DEBUG,
        "notice" => Level::INFO,
        _ => Level::WARN,
    };
    let builder = tracing_subscriber::fmt().event_format(RedisFormat).with_max_level(level);
    if logfile.is_empty() {
        let _ = builder.with_writer(LineStdout).try_init();
    } else {
        match std::fs::OpenOptions::new().create(true).append(true).open(logfile) {
            Ok(f) => {
                let f = std::sync::Mutex::new(f);
                let _ = builder.with_writer(f).try_init();
            }
            Err(e) => {
                eprintln!("Can't open the log file: {e}");
                std::process::exit(1);
            }
        }
    }
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
