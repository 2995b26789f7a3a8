//! Whole Redis RDB files (version 10, what redis-server 7.0 writes): the full-sync payload a
//! ferrodis master sends every peer that is not a ferrodis replica (a redis-server replica,
//! `redis-cli --rdb`), so that Redis and its tools can read it. `rdb.rs` reads them back.
//!
//! The layout is Redis's `rdbSaveRio`: `REDIS0010`; the aux fields `redis-ver`, `redis-bits`,
//! `ctime`, `used-mem`, `repl-stream-db`, `repl-id`, `repl-offset`, `aof-base`; one `FUNCTION2`
//! record per function library; per database `SELECTDB` and `RESIZEDB`, then its keys
//! (`EXPIRETIME_MS` when the key has one, `IDLE` or `FREQ` under an LRU or LFU
//! `maxmemory-policy`, then type, key and value as [`rdb_write::object`] writes them for
//! DUMP); `EOF`; the CRC-64 of everything before it (zero with `rdbchecksum no`).
//!
//! **Point in time.** The file is taken by the same fork-less capture as our snapshots
//! (`engine`): the main table's barrier encodes a key as a *capture record* the moment a write
//! is about to change it. A record cannot hold the key's expiry, which lives in another table
//! (`Db::expires`) the barrier cannot see, but its meta word says whether the key has one. So
//! the record keeps a slot for it, filled on the event loop when the records are collected
//! ([`resolve_expiries`]): from the expires table itself when the key's entry there is still
//! uncaptured (unchanged since the snapshot point), else from the record the expires table's
//! own per-key barrier made when the entry changed. Every expiry change of a key passes the
//! main table's barrier first (`Db`'s methods touch the key's slot, whose meta bit they keep),
//! and `Table::take_uncaptured` marks the entry captured as it is read, so each expiry is
//! found exactly once. The writer thread ([`RdbWriter`]) then only frames the records as RDB:
//! a `SELECTDB` whenever the database changes (a write may capture a key of any database at
//! any time, so a database's keys may come in several runs; `RESIZEDB` is written at its first
//! run) and a running CRC-64.

use std::collections::HashMap;
use std::io::{self, Write};

use super::file::{Meta, WriteOptions};
use super::rdb::{op, Crc64};
use super::rdb_write::{self, put_len, raw_string};
use crate::keyspace::Value;
use crate::keyspace::{evict, expire, key_access, key_has_expire, table::Key, Entry, Keyspace};

/// Redis 7.0's RDB version, in the file's magic.
const MAGIC: &[u8; 9] = b"REDIS0010";

/// What an RDB file holds: Redis's `rdb-filter-only` leaves out the keys (`functions`: only
/// the function libraries; an empty filter: neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RdbParts {
    pub keys: bool,
    pub functions: bool,
}

impl RdbParts {
    pub const ALL: RdbParts = RdbParts { keys: true, functions: true };
}

/// Which access data Redis writes before each key: `IDLE` (seconds) under an LRU policy,
/// `FREQ` (the LFU counter) under an LFU one, nothing otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    Lru,
    Lfu,
}

impl Access {
    pub fn for_policy(policy: &str) -> Access {
        match policy {
            "allkeys-lru" | "volatile-lru" => Access::Lru,
            "allkeys-lfu" | "volatile-lfu" => Access::Lfu,
            _ => Access::None,
        }
    }
}

/// How keys are written: the object options DUMP uses, and the access data.
#[derive(Clone, Copy, Debug)]
pub struct KeyOptions {
    pub object: rdb_write::Options,
    pub access: Access,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            object: rdb_write::Options { compress: true, list_fill: -2 },
            access: Access::None,
        }
    }
}

thread_local! {
    /// The options of the RDB capture running on this thread. The tables' barriers call a
    /// plain `fn` ([`encode_entry`]) that has no other way to receive them; captures run on
    /// the event loop's thread only, one at a time.
    static CAPTURE: std::cell::Cell<KeyOptions> = std::cell::Cell::new(KeyOptions::default());
}

/// Sets the options [`encode_entry`] uses until the next call.
pub fn set_capture_options(o: KeyOptions) {
    CAPTURE.with(|c| c.set(o));
}

// ---------------------------------------------------------------------------------------------
// keys

/// One key as Redis writes it: `EXPIRETIME_MS` (if `expire` is set), access data, type, key,
/// value. `access` is the key's LRU/LFU word.
pub fn write_key(
    out: &mut Vec<u8>,
    key: &[u8],
    value: &Value,
    expire: Option<u64>,
    access: u32,
    o: KeyOptions,
) {
    if let Some(at) = expire {
        out.push(op::EXPIRETIME_MS);
        out.extend_from_slice(&at.to_le_bytes());
    }
    key_body(out, key, value, access, o);
}

/// Everything of a key after its expiry.
fn key_body(out: &mut Vec<u8>, key: &[u8], value: &Value, access: u32, o: KeyOptions) {
    match o.access {
        Access::None => {}
        Access::Lru => {
            out.push(op::IDLE);
            put_len(out, expire::idle_ms(access) / 1000);
        }
        Access::Lfu => {
            out.push(op::FREQ);
            out.push(evict::lfu_counter(access));
        }
    }
    out.push(rdb_write::object_type(value));
    raw_string(out, key, o.object.compress);
    rdb_write::object_value(out, value, o.object);
}

// ---------------------------------------------------------------------------------------------
// capture records

/// Capture record flag: the key has an expiry, whose slot follows.
const REC_EXPIRES: u8 = 1;

/// The capture encoder of the main table (see the module doc): `u32` length of the body,
/// flags, and for a key with an expiry the key (`u32` length, bytes) and an 8-byte slot for
/// the expiry; then the body, the key as [`write_key`] writes it after its expiry.
pub fn encode_entry(k: &Key, e: &Entry, out: &mut Vec<u8>) {
    let o = CAPTURE.with(std::cell::Cell::get);
    let head = out.len();
    out.extend_from_slice(&[0; 4]);
    if key_has_expire(k) {
        out.push(REC_EXPIRES);
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&[0; 8]);
    } else {
        out.push(0);
    }
    let body = out.len();
    key_body(out, k, &e.value, key_access(k), o);
    let len = (out.len() - body) as u32;
    out[head..head + 4].copy_from_slice(&len.to_le_bytes());
}

/// The capture encoder of the expires table (its barrier only: the table is never walked):
/// the key (`u32` length, bytes) and its expiry as it was at the snapshot point.
pub fn encode_expire(k: &Key, at: &u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&(k.len() as u32).to_le_bytes());
    out.extend_from_slice(k);
    out.extend_from_slice(&at.to_le_bytes());
}

fn read_u32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Expiries one database's expires-table barrier captured before their keys' records were
/// collected: key -> expiry.
pub type EarlyExpires = HashMap<Box<[u8]>, u64>;

/// Fills the expiry slots of the capture records in `values` (see the module doc):
/// `expires` holds the expires-table records captured since the last call, which join
/// `early`; a key missing there is looked up with `live` (`Table::take_uncaptured` on the
/// expires table). Returns how many slots found no expiry (zero unless a key's expiry
/// changed without its main-table slot being touched first).
pub fn resolve_expiries(
    values: &mut [u8],
    expires: &[u8],
    early: &mut EarlyExpires,
    mut live: impl FnMut(&[u8]) -> Option<u64>,
) -> usize {
    let mut pos = 0;
    while let Some(klen) = read_u32(expires, pos) {
        let key = &expires[pos + 4..pos + 4 + klen];
        let at = &expires[pos + 4 + klen..pos + 12 + klen];
        early.insert(key.into(), u64::from_le_bytes(at.try_into().unwrap_or_default()));
        pos += 12 + klen;
    }
    let mut missing = 0;
    let mut pos = 0;
    while let Some(body) = read_u32(values, pos) {
        let mut next = pos + 5;
        if values[pos + 4] & REC_EXPIRES != 0 {
            let klen = read_u32(values, next).unwrap_or(0);
            let key = &values[next + 4..next + 4 + klen];
            // Usually empty: only expiries changed before their key was written are there.
            let at = match early.is_empty() {
                true => live(key),
                false => early.remove(key).or_else(|| live(key)),
            };
            let slot = next + 4 + klen;
            match at {
                Some(at) => values[slot..slot + 8].copy_from_slice(&at.to_le_bytes()),
                None => {
                    // Written without an expiry rather than with a wrong one.
                    values[pos + 4] &= !REC_EXPIRES;
                    missing += 1;
                }
            }
            next = slot + 8;
        }
        pos = next + body;
    }
    missing
}

// ---------------------------------------------------------------------------------------------
// the file

/// Writes an RDB file piece by piece: the header at creation, then keys (capture records
/// with [`write_block`](Self::write_block), or finished keys after [`select`](Self::select)),
/// then [`finish`](Self::finish).
pub struct RdbWriter<W: Write> {
    w: W,
    crc: Option<Crc64>,
    written: u64,
    /// The database of the last `SELECTDB`.
    db: Option<u32>,
    /// `RESIZEDB` hints (keys, expires) of the databases not selected yet.
    sizes: HashMap<u32, (u64, u64)>,
    head: Vec<u8>,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the magic, the aux fields and (unless `parts` leaves them out) the function
    /// libraries of the snapshot described by `meta`.
    pub fn new(w: W, meta: &Meta, opts: WriteOptions, parts: RdbParts) -> io::Result<Self> {
        let sizes = match parts.keys {
            true => meta.dbs.iter().map(|d| (d.db, (d.keys, d.expires))).collect(),
            false => HashMap::new(),
        };
        let crc = opts.checksum.then(Crc64::default);
        let mut rw = RdbWriter { w, crc, written: 0, db: None, sizes, head: Vec::new() };
        let mut h = MAGIC.to_vec();
        let aux = |h: &mut Vec<u8>, k: &str, v: &[u8]| {
            h.push(op::AUX);
            raw_string(h, k.as_bytes(), opts.compress);
            raw_string(h, v, opts.compress);
        };
        let get = |name: &str| meta.aux.iter().find(|(k, _)| k == name).map(|(_, v)| &v[..]);
        aux(&mut h, "redis-ver", crate::server::listener::REDIS_VERSION.as_bytes());
        aux(&mut h, "redis-bits", b"64");
        aux(&mut h, "ctime", (meta.created_ms / 1000).to_string().as_bytes());
        aux(&mut h, "used-mem", meta.used_memory.to_string().as_bytes());
        aux(&mut h, "repl-stream-db", get("repl-stream-db").unwrap_or(b"0"));
        aux(&mut h, "repl-id", meta.repl_id.as_bytes());
        aux(&mut h, "repl-offset", meta.repl_offset.to_string().as_bytes());
        aux(&mut h, "aof-base", b"0");
        let payload = get(super::engine::AUX_FUNCTIONS);
        let codes = payload.and_then(crate::scripting::functions::parse_dump).unwrap_or_default();
        if parts.functions {
            for code in &codes {
                h.push(op::FUNCTION2);
                raw_string(&mut h, code, opts.compress);
            }
        }
        rw.put(&h)?;
        Ok(rw)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        if let Some(c) = &mut self.crc {
            c.update(b);
        }
        self.written += b.len() as u64;
        Ok(())
    }

    /// Makes `db` the database of the keys that follow: `SELECTDB`, and `RESIZEDB` the first
    /// time.
    pub fn select(&mut self, db: u32) -> io::Result<()> {
        if self.db == Some(db) {
            return Ok(());
        }
        self.db = Some(db);
        let mut h = std::mem::take(&mut self.head);
        h.clear();
        h.push(op::SELECTDB);
        put_len(&mut h, u64::from(db));
        if let Some((keys, expires)) = self.sizes.remove(&db) {
            h.push(op::RESIZEDB);
            put_len(&mut h, keys);
            put_len(&mut h, expires);
        }
        let r = self.put(&h);
        self.head = h;
        r
    }

    /// Writes finished keys ([`write_key`]) of the selected database.
    pub fn write_keys(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(bytes)
    }

    /// Writes capture records of database `db` whose expiries are resolved.
    pub fn write_block(&mut self, db: u32, raw: &[u8]) -> io::Result<()> {
        if raw.is_empty() {
            return Ok(());
        }
        self.select(db)?;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "truncated RDB capture record");
        let mut pos = 0;
        while pos < raw.len() {
            let body = read_u32(raw, pos).ok_or_else(bad)?;
            let flags = *raw.get(pos + 4).ok_or_else(bad)?;
            let mut next = pos + 5;
            if flags & REC_EXPIRES != 0 {
                let klen = read_u32(raw, next).ok_or_else(bad)?;
                let slot = raw.get(next + 4 + klen..next + 12 + klen).ok_or_else(bad)?;
                let mut h = [0u8; 9];
                h[0] = op::EXPIRETIME_MS;
                h[1..].copy_from_slice(slot);
                self.put(&h)?;
                next += 12 + klen;
            }
            let body = raw.get(next..next + body).ok_or_else(bad)?;
            self.put(body)?;
            pos = next + body.len();
        }
        Ok(())
    }

    /// Writes `EOF` and the checksum; returns the sink (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[op::EOF])?;
        let crc = self.crc.map_or(0, |c| c.value());
        self.w.write_all(&crc.to_le_bytes())?;
        self.written += 8;
        self.w.flush()?;
        Ok(self.w)
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

/// Writes the RDB file of `ks` (a synchronous save: nothing changes meanwhile) to `w`;
/// `delay` runs once per key (`rdb-key-save-delay`). Returns the sink.
pub fn write_keyspace<W: Write>(
    w: W,
    ks: &Keyspace,
    meta: &Meta,
    opts: WriteOptions,
    parts: RdbParts,
    o: KeyOptions,
    mut delay: impl FnMut(),
) -> io::Result<W> {
    let mut rw = RdbWriter::new(w, meta, opts, parts)?;
    let mut buf = Vec::with_capacity(64 << 10);
    for (i, db) in ks.dbs.iter().enumerate().filter(|_| parts.keys) {
        if db.is_empty() {
            continue;
        }
        rw.select(i as u32)?;
        for (k, e) in db.main.iter() {
            let at = if key_has_expire(k) { db.expires.get(k).copied() } else { None };
            write_key(&mut buf, k, &e.value, at, key_access(k), o);
            delay();
            if buf.len() >= 64 << 10 {
                rw.write_keys(&buf)?;
                buf.clear();
            }
        }
        rw.write_keys(&buf)?;
        buf.clear();
    }
    rw.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Db, HashValue, ListValue, RString, NO_EXPIRE};
    use crate::snapshot::codec::EncodingLimits;
    use crate::snapshot::engine::{KeyspaceSink, AUX_FUNCTIONS};
    use crate::snapshot::file::DbCount;

    fn limits() -> EncodingLimits {
        EncodingLimits::default()
    }

    fn meta_of(ks: &Keyspace, functions: &[&[u8]]) -> Meta {
        let mut aux = Vec::new();
        if !functions.is_empty() {
            // The `functions` aux field: FUNCTION DUMP's own format (formats/functions.md).
            let p = crate::scripting::functions::dump_codes(functions.iter().copied());
            aux.push((AUX_FUNCTIONS.to_string(), p));
        }
        let dbs = ks
            .dbs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(i, d)| DbCount {
                db: i as u32,
                keys: d.len() as u64,
                expires: d.expires.len() as u64,
            })
            .collect();
        Meta {
            created_ms: 1_700_000_000_000,
            server_version: String::new(),
            repl_id: "a".repeat(40),
            repl_offset: 12345,
            used_memory: 1 << 20,
            dbs,
            aux,
        }
    }

    /// A dataset of every type in several databases, some keys with expiries (one in the
    /// past, which an RDB keeps: only a loading master drops it).
    fn sample() -> Keyspace {
        let mut ks = Keyspace::new(4);
        let lim = limits();
        let d0 = &mut ks.dbs[0];
        d0.set(b"int", Value::Str(RString::Int(-42)));
        d0.set(b"str", Value::from_bytes(b"hello world"));
        d0.set_with_expire(b"long", Value::from_bytes(&b"x".repeat(300)), 4_000_000_000_000);
        let mut h = HashValue::new();
        h.set(b"f", b"v", lim.hash);
        h.set(b"n", b"17", lim.hash);
        d0.set(b"hash", Value::Hash(h));
        d0.set_with_expire(b"old", Value::from_bytes(b"gone"), 5);
        let d2 = &mut ks.dbs[2];
        let l = ListValue::from_iter(
            (0..500).map(|i| format!("item{i}")).collect::<Vec<_>>().iter().map(String::as_bytes),
            -2,
        );
        d2.set(b"list", Value::List(l));
        d2.set_with_expire(b"12345", Value::from_bytes(b"numeric key"), 4_100_000_000_000);
        ks
    }

    fn load(bytes: &[u8]) -> (Keyspace, Vec<(String, Vec<u8>)>) {
        let mut ks = Keyspace::new(4);
        let mut sink = KeyspaceSink::new(&mut ks, None, false);
        let meta = crate::snapshot::rdb::load(bytes, limits(), &mut sink).unwrap();
        drop(sink);
        (ks, meta.aux)
    }

    /// Every key of `a` is in `b` with the same value and expiry, and the other way round.
    fn assert_same(a: &Keyspace, b: &Keyspace) {
        for (i, (da, db)) in a.dbs.iter().zip(&b.dbs).enumerate() {
            assert_eq!(da.len(), db.len(), "db {i} key count");
            for (k, e) in da.main.iter() {
                let other = db.peek(k).unwrap_or_else(|| panic!("db {i}: {k:?} missing"));
                assert_eq!(e.value, other.value, "db {i}: {k:?}");
                assert_eq!(da.expire_of(k), db.expire_of(k), "db {i}: expiry of {k:?}");
            }
        }
    }

    #[test]
    fn whole_file_round_trips_through_the_rdb_reader() {
        let ks = sample();
        let lib: &[u8] = b"#!lua name=lib1\nredis.register_function('f', function() return 1 end)";
        let meta = meta_of(&ks, &[lib]);
        for (compress, checksum) in [(true, true), (false, false)] {
            let opts = WriteOptions { compress, checksum };
            let mut o = KeyOptions::default();
            o.object.compress = compress;
            let bytes =
                write_keyspace(Vec::new(), &ks, &meta, opts, RdbParts::ALL, o, || {}).unwrap();
            assert!(bytes.starts_with(b"REDIS0010"));
            let crc = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
            match checksum {
                true => assert_eq!(crc, crate::snapshot::rdb::crc64(&bytes[..bytes.len() - 8])),
                false => assert_eq!(crc, 0),
            }
            let (loaded, aux) = load(&bytes);
            assert_same(&ks, &loaded);
            let get = |k: &str| aux.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(get("redis-ver").as_deref(), Some(&b"7.0.15"[..]));
            assert_eq!(get("repl-offset").as_deref(), Some(&b"12345"[..]));
            assert_eq!(get("repl-stream-db").as_deref(), Some(&b"0"[..]));
            let codes = crate::scripting::functions::parse_dump(&get(AUX_FUNCTIONS).unwrap());
            assert_eq!(codes, Some(vec![lib.to_vec()]));
        }
    }

    #[test]
    fn parts_leave_out_keys_and_functions() {
        let ks = sample();
        let meta = meta_of(&ks, &[b"#!lua name=l\nredis.register_function('g', function() end)"]);
        let o = KeyOptions::default();
        let opts = WriteOptions::default();
        let only_functions = RdbParts { keys: false, functions: true };
        let bytes = write_keyspace(Vec::new(), &ks, &meta, opts, only_functions, o, || {}).unwrap();
        let (loaded, aux) = load(&bytes);
        assert!(loaded.dbs.iter().all(Db::is_empty));
        assert!(aux.iter().any(|(k, _)| k == AUX_FUNCTIONS));
        let nothing = RdbParts { keys: false, functions: false };
        let bytes = write_keyspace(Vec::new(), &ks, &meta, opts, nothing, o, || {}).unwrap();
        let (loaded, aux) = load(&bytes);
        assert!(loaded.dbs.iter().all(Db::is_empty));
        assert!(!aux.iter().any(|(k, _)| k == AUX_FUNCTIONS));
    }

    #[test]
    fn a_small_key_is_byte_identical_to_redis() {
        // What redis-server 7.0 writes for `SET k v` + `PEXPIREAT k 4000000000000`.
        let mut out = Vec::new();
        write_key(
            &mut out,
            b"k",
            &Value::from_bytes(b"v"),
            Some(4_000_000_000_000),
            0,
            KeyOptions::default(),
        );
        let mut want = vec![0xfc];
        want.extend_from_slice(&4_000_000_000_000u64.to_le_bytes());
        want.extend_from_slice(&[0, 1, b'k', 1, b'v']);
        assert_eq!(out, want);
    }

    /// Applies a random write to `db` (through `Db`'s methods, as commands do) and to the
    /// model `now` of the current contents.
    fn random_write(db: &mut Db, rng: &mut impl rand::Rng, step: u64) {
        let k = format!("k{}", rng.gen_range(0..300)).into_bytes();
        match rng.gen_range(0..7) {
            0 => {
                db.set(&k, Value::from_bytes(format!("v{step}").as_bytes()));
            }
            1 => {
                db.set_with_expire(&k, Value::from_bytes(b"e"), 5_000_000_000_000 + step);
            }
            2 => {
                db.set_expire(&k, 6_000_000_000_000 + step);
            }
            3 => {
                db.persist(&k);
            }
            4 => {
                db.remove(&k);
            }
            5 => {
                let to = format!("k{}", rng.gen_range(0..300)).into_bytes();
                if to != k {
                    db.rename(&k, &to);
                }
            }
            _ => {
                if let Some((e, at, lru)) = db.take(&k) {
                    let at = if at == NO_EXPIRE { 7_000_000_000_000 + step } else { NO_EXPIRE };
                    db.insert_entry(&k, e, at, lru);
                }
            }
        }
    }

    #[test]
    fn capture_under_writes_is_point_in_time_with_expiries() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut ks = Keyspace::new(1);
            for step in 0..2000 {
                random_write(&mut ks.dbs[0], &mut rng, step);
            }
            // The expected file: a synchronous write of the state at the snapshot point.
            let meta = meta_of(&ks, &[]);
            let opts = WriteOptions::default();
            let o = KeyOptions::default();
            let want = write_keyspace(Vec::new(), &ks, &meta, opts, RdbParts::ALL, o, || {});
            let (want, _) = load(&want.unwrap());
            set_capture_options(o);
            let db = &mut ks.dbs[0];
            db.main.start_capture((encode_entry, |_, _| {}), 0, true);
            db.expires.start_capture((encode_expire, |_, _| {}), 0, true);
            let mut rw = RdbWriter::new(Vec::new(), &meta, opts, RdbParts::ALL).unwrap();
            let mut early = EarlyExpires::new();
            let mut step = 2000;
            loop {
                for _ in 0..rng.gen_range(0..40) {
                    step += 1;
                    random_write(db, &mut rng, step);
                }
                if rng.gen_range(0..50) == 0 {
                    db.clear();
                }
                let left = db.main.capture_pending(rng.gen_range(1..60));
                let mut values = std::mem::take(&mut db.main.capture_mut().unwrap().out);
                let exp = std::mem::take(&mut db.expires.capture_mut().unwrap().out);
                let missing = resolve_expiries(&mut values, &exp, &mut early, |k| {
                    db.expires.take_uncaptured(k)
                });
                assert_eq!(missing, 0, "seed {seed}");
                rw.write_block(0, &values).unwrap();
                if left == 0 {
                    break;
                }
            }
            assert!(early.is_empty(), "seed {seed}: expiries left without their keys");
            db.main.end_capture();
            db.expires.end_capture();
            let bytes = rw.finish().unwrap();
            let (got, _) = load(&bytes);
            assert_same(&want, &got);
        }
    }
}
