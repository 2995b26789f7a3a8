//! A RESP base (`aof-use-rdb-preamble no`): the rewrite's snapshot turned into commands, on a
//! thread of its own, so the base is plain RESP that Redis (and `redis-check-aof`) read too.
//!
//! Commands per key, like Redis's rewrite: `SET`, `RPUSH` / `SADD` / `HMSET` / `ZADD` with at
//! most [`ITEMS_PER_CMD`] elements each, streams as XADD / XSETID / XGROUP / XCLAIM,
//! `SELECT` when the database changes, and the expiries
//! last as `PEXPIREAT` (the snapshot may store a table's expiries before its values, and an
//! expiry for a key not yet created would be lost). Function libraries come first, as
//! `FUNCTION LOAD`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::journal::encode_command;
use crate::keyspace::Value;
use crate::snapshot::codec::EncodingLimits;
use crate::snapshot::file::{self, LoadSink, Meta};

/// Elements per command (Redis's `AOF_REWRITE_ITEMS_PER_CMD`).
const ITEMS_PER_CMD: usize = 64;

/// Writes the commands for every record of a snapshot.
struct RespSink {
    out: BufWriter<File>,
    buf: Vec<u8>,
    db: Option<u32>,
    expires: Vec<(u32, Vec<u8>, u64)>,
    err: Option<std::io::Error>,
}

impl RespSink {
    fn emit(&mut self, argv: &[&[u8]]) {
        self.buf.clear();
        encode_command(&mut self.buf, argv);
        if self.err.is_none() {
            if let Err(e) = self.out.write_all(&self.buf) {
                self.err = Some(e);
            }
        }
    }

    fn select(&mut self, db: u32) {
        if self.db != Some(db) {
            self.db = Some(db);
            self.emit(&[b"SELECT", db.to_string().as_bytes()]);
        }
    }

    /// `cmd key item...` in chunks of [`ITEMS_PER_CMD`] items (an item may be several args).
    fn chunked(&mut self, cmd: &[u8], key: &[u8], items: Vec<Vec<Vec<u8>>>) {
        for chunk in items.chunks(ITEMS_PER_CMD) {
            let mut argv: Vec<&[u8]> = vec![cmd, key];
            argv.extend(chunk.iter().flatten().map(Vec::as_slice));
            self.emit(&argv);
        }
    }

    /// The commands that rebuild a stream, as Redis's `rewriteStreamObject`: XADD per entry
    /// (an empty stream through `XADD key MAXLEN 0 0-1 x y`), XSETID with the metadata, then
    /// per group XGROUP CREATE ... ENTRIESREAD, an `XCLAIM ... FORCE` per pending entry, and
    /// XGROUP CREATECONSUMER for consumers with nothing pending.
    fn stream(&mut self, key: &[u8], st: &crate::keyspace::StreamValue) {
        let id = |i: crate::keyspace::stream::StreamId| i.to_bytes();
        if st.is_empty() {
            self.emit(&[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
        }
        for it in st.iter() {
            let idb = id(it.id);
            let mut argv: Vec<&[u8]> = vec![b"XADD", key, &idb];
            argv.extend(it.fields.iter().map(|f| &**f));
            self.emit(&argv);
        }
        let (last, maxdel) = (id(st.last_id), id(st.max_deleted_id));
        let added = st.entries_added.to_string();
        self.emit(&[
            b"XSETID", key, &last, b"ENTRIESADDED", added.as_bytes(), b"MAXDELETEDID", &maxdel,
        ]);
        for (name, g) in &st.groups {
            let (gid, read) = (id(g.last_id), g.entries_read.to_string());
            self.emit(&[b"XGROUP", b"CREATE", key, name, &gid, b"ENTRIESREAD", read.as_bytes()]);
            for (cname, c) in &g.consumers {
                if c.pel.is_empty() {
                    self.emit(&[b"XGROUP", b"CREATECONSUMER", key, name, cname]);
                    continue;
                }
                for pid in &c.pel {
                    let Some(n) = g.pel.get(pid) else { continue };
                    let (pidb, t, cnt) =
                        (id(*pid), n.delivery_time.to_string(), n.delivery_count.to_string());
                    self.emit(&[
                        b"XCLAIM", key, name, cname, b"0", &pidb, b"TIME", t.as_bytes(),
                        b"RETRYCOUNT", cnt.as_bytes(), b"JUSTID", b"FORCE",
                    ]);
                }
            }
        }
    }

    fn finish(mut self) -> std::io::Result<File> {
        for (db, key, at) in std::mem::take(&mut self.expires) {
            self.select(db);
            self.emit(&[b"PEXPIREAT", &key, at.to_string().as_bytes()]);
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.out.flush()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

impl LoadSink for RespSink {
    fn meta(&mut self, meta: &Meta) -> Result<(), String> {
        let libs = meta
            .aux
            .iter()
            .find(|(k, _)| k == crate::snapshot::engine::AUX_FUNCTIONS);
        if let Some((_, payload)) = libs {
            let codes = crate::scripting::functions::parse_dump(payload)
                .ok_or("bad function libraries payload")?;
            for code in codes {
                self.emit(&[b"FUNCTION", b"LOAD", &code]);
            }
        }
        Ok(())
    }

    fn value(&mut self, db: u32, key: &[u8], value: Value) -> Result<(), String> {
        self.select(db);
        match value {
            Value::Str(s) => s.with_bytes(|v| self.emit(&[b"SET", key, v])),
            Value::List(l) => {
                let items = l.iter().map(|e| vec![e.into_owned()]).collect();
                self.chunked(b"RPUSH", key, items);
            }
            Value::Set(s) => {
                let items = s.iter().map(|m| vec![m.to_vec()]).collect();
                self.chunked(b"SADD", key, items);
            }
            Value::Hash(h) => {
                let items = h
                    .iter()
                    .map(|(f, v)| vec![f.into_owned(), v.to_vec()])
                    .collect();
                self.chunked(b"HMSET", key, items);
            }
            Value::ZSet(z) => {
                let mut items = Vec::with_capacity(z.len());
                z.for_range(0, z.len(), false, |m, s| {
                    let score = crate::util::num::fmt_double_17g(s).into_bytes();
                    items.push(vec![score, m.to_vec()]);
                });
                self.chunked(b"ZADD", key, items);
            }
            Value::Stream(st) => self.stream(key, &st),
        }
        Ok(())
    }

    fn expire(&mut self, db: u32, key: &[u8], at_ms: u64) -> Result<(), String> {
        self.expires.push((db, key.to_vec(), at_ms));
        Ok(())
    }
}

/// Converts the snapshot at `snapshot` into a RESP base at `dest` (written under a temporary
/// name, fsynced, renamed), starting with a `#TS:<secs>` annotation when `timestamp` is given
/// (`aof-timestamp-enabled`). Returns the base's size.
pub fn convert(snapshot: &Path, dest: &Path, timestamp: Option<u64>) -> Result<u64, String> {
    let bytes = std::fs::read(snapshot).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    let tmp = dest.with_file_name(format!(
        "temp-{}",
        dest.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut sink = RespSink {
        out: BufWriter::with_capacity(1 << 20, file),
        buf: Vec::new(),
        db: None,
        expires: Vec::new(),
        err: None,
    };
    if let Some(secs) = timestamp {
        sink.out
            .write_all(format!("#TS:{secs}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let written = file::load(&bytes, EncodingLimits::default(), &mut sink)
        .map_err(|e| e.to_string())
        .and_then(|_| sink.finish().map_err(|e| e.to_string()))
        .and_then(|f| {
            f.sync_all().map_err(|e| e.to_string())?;
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            std::fs::rename(&tmp, dest).map_err(|e| e.to_string())?;
            Ok(len)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{value::RString, Keyspace};
    use crate::server::ServerState;

    /// A snapshot of strings (one with an expiry) in two databases becomes the commands that
    /// rebuild it, expiries last.
    #[test]
    fn converts_a_snapshot_to_commands() {
        let dir = tempfile::tempdir().unwrap();
        let mut ks = Keyspace::new(16);
        ks.db(0).set(b"a", Value::Str(RString::from_bytes(b"1")));
        ks.db(0).set_with_expire(
            b"t",
            Value::Str(RString::from_bytes(b"x")),
            4_000_000_000_000,
        );
        ks.db(5).set(b"b", Value::Str(RString::from_bytes(b"two")));
        let st = ServerState::new(crate::config::Config::default());
        let snap = dir.path().join("s.rdb");
        crate::snapshot::engine::save_to(&ks, &st, &snap).unwrap();
        let dest = dir.path().join("base.aof");
        let size = convert(&snap, &dest, Some(1700000000)).unwrap();
        let text = std::fs::read(&dest).unwrap();
        assert_eq!(size, text.len() as u64);
        let mut cmds: Vec<String> = Vec::new();
        let mut sc = super::super::format::Scanner::new(&text[..]);
        while let Ok(super::super::format::Step::Commands { cmds: c, .. }) = sc.next_step() {
            cmds.extend(
                c.iter()
                    .map(|a| String::from_utf8_lossy(&a.join(&b' ')).into_owned()),
            );
        }
        assert!(text.starts_with(b"#TS:1700000000\r\n"));
        assert_eq!(cmds[0], "SELECT 0");
        assert!(cmds.contains(&"SET a 1".to_string()));
        assert!(cmds.contains(&"SET t x".to_string()));
        let b = cmds.iter().position(|c| c == "SET b two").unwrap();
        assert_eq!(cmds[b - 1], "SELECT 5");
        assert_eq!(cmds.last().unwrap(), "PEXPIREAT t 4000000000000");
    }
}
