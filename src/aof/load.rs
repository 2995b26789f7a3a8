//! Replaying append-only files into the keyspace at start-up.
//!
//! Each command goes through [`crate::dispatch::execute`] as an internal, authenticated client,
//! so MULTI/EXEC are honoured exactly as they were when logged, with the keyspace in loading
//! mode (see ARCHITECTURE.md, "Expiry is a write": the log carries its own DELs, the clock
//! expires nothing). A torn tail (only in the last file) is truncated when allowed; anything
//! else wrong refuses the start with the file, the offset and the reason.

use std::path::Path;
use std::rc::Rc;

use super::format::{Scanner, Step};
use crate::protocol::{ReplyBuf, Resp};
use crate::server::client::{Client, ClientInfo, ClientShared};
use crate::server::Server;

/// What loading found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub commands: u64,
    pub bytes: u64,
}

/// Redis's RDB signature: a base (or an old preamble) in RDB format.
pub fn is_rdb(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut sig = [0u8; 5];
    let mut f = std::fs::File::open(path)?;
    let mut got = 0;
    while got < 5 {
        let n = f.read(&mut sig[got..])?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    Ok(&sig == b"REDIS")
}

/// Replays one file. `last` is whether it is the last file of the log (only that one may have
/// a torn tail); `truncate_ok` is `aof-load-truncated`.
pub fn replay_file(
    server: &mut Server,
    path: &Path,
    last: bool,
    truncate_ok: bool,
) -> Result<Loaded, String> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    if is_rdb(path).map_err(|e| open_error(&name, &e))? {
        return Err(format!(
            "The append only file {name} starts with an RDB preamble (an RDB base): loading \
             RDB-format AOF files is not supported yet. Rewrite it with Redis using \
             'aof-use-rdb-preamble no' (BGREWRITEAOF) before migrating."
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| open_error(&name, &e))?;
    let mut sc = Scanner::new(file);
    let mut client = loader_client();
    let mut out = ReplyBuf::new(Resp::V2);
    let mut loaded = Loaded::default();
    server.ks.loading = true;
    server.ks.expire_on_access = false;
    server.state.aof.replaying = true;
    let res = loop {
        let step = match sc.next_step() {
            Ok(s) => s,
            Err(e) => {
                break Err(format!(
                    "Unrecoverable error reading the append only file {name}: {e}"
                ))
            }
        };
        match step {
            Step::Commands { cmds, end } => {
                if let Err(e) = apply(server, &mut client, &mut out, &cmds, &name, end) {
                    break Err(e);
                }
                loaded.commands += cmds.len() as u64;
                loaded.bytes = end;
            }
            Step::End => break Ok(loaded),
            Step::Torn { valid, reason } => {
                break torn(
                    server,
                    &mut client,
                    path,
                    &name,
                    valid,
                    &reason,
                    last,
                    truncate_ok,
                )
                .map(|()| Loaded {
                    bytes: valid,
                    ..loaded
                })
            }
            Step::Corrupt { offset, reason } => {
                break Err(format!(
                    "Bad file format reading the append only file {name} at offset {offset}: \
                     {reason}. Make a backup of your AOF file, then use ferrodis-check-aof \
                     --fix <filename> (it truncates the file at that offset)."
                ))
            }
        }
    };
    server.ks.loading = false;
    server.ks.expire_on_access = true;
    server.state.aof.replaying = false;
    res
}

/// The internal client commands are replayed as (Redis's AOF fake client).
fn loader_client() -> Client {
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let shared = Rc::new(ClientShared::new(ClientInfo::new(0, addr, addr, -1)));
    Client::new(0, shared, true)
}

fn open_error(name: &str, e: &std::io::Error) -> String {
    format!("Fatal error: can't open the append log file {name} for reading: {e}")
}

/// Executes the commands of one record. An unknown command means the file is not ours to load.
fn apply(
    server: &mut Server,
    client: &mut Client,
    out: &mut ReplyBuf,
    cmds: &[Vec<Vec<u8>>],
    name: &str,
    end: u64,
) -> Result<(), String> {
    for argv in cmds {
        if crate::commands::registry().lookup(&argv[0]).is_none() {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name} (record ending at \
                 offset {end})",
                String::from_utf8_lossy(&argv[0])
            ));
        }
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        crate::dispatch::execute(server, client, out, &refs);
        out.buf.clear();
    }
    Ok(())
}

/// A torn tail: truncated (and logged, like Redis) when allowed and in the last file.
#[allow(clippy::too_many_arguments)]
fn torn(
    server: &mut Server,
    client: &mut Client,
    path: &Path,
    name: &str,
    valid: u64,
    reason: &str,
    last: bool,
    truncate_ok: bool,
) -> Result<(), String> {
    // Commands queued by a MULTI the file never closed are dropped, never applied.
    crate::commands::multi::reset(&mut server.state, client);
    if !last {
        return Err(format!(
            "Fatal error: the truncated file {name} is not the last file ({reason} at offset {valid})"
        ));
    }
    if !truncate_ok {
        return Err(format!(
            "Unexpected end of file reading the append only file {name} ({reason}; the last \
             valid record ends at offset {valid}). You can: 1) Make a backup of your AOF file, \
             then use ferrodis-check-aof --fix <filename>. 2) Alternatively you can set the \
             'aof-load-truncated' configuration option to yes and restart the server."
        ));
    }
    tracing::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
    tracing::warn!("!!! Truncating the AOF {name} at offset {valid} ({reason}) !!!");
    let f = std::fs::OpenOptions::new().write(true).open(path);
    if let Err(e) = f.and_then(|f| f.set_len(valid).and_then(|()| f.sync_all())) {
        return Err(format!("Error truncating the AOF file {name}: {e}"));
    }
    tracing::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
    Ok(())
}
