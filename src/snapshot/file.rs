//! The snapshot file: header, compressed and checksummed blocks, end marker (see
//! `formats/snapshot.md`).
//!
//! [`SnapshotWriter`] streams a file from blocks of encoded records (see [`super::codec`]);
//! [`load`] verifies and decodes a whole file held in memory. Loading runs in two stages: a
//! second thread walks the blocks, checks their crc32 and lz4-decompresses them, while the
//! calling thread decodes the records into the [`LoadSink`]; a bounded channel of a few blocks
//! sits between them. Decoding collections costs more than reading: whenever that channel is
//! full, the reading thread decodes the block it holds itself before queueing it (see
//! [`predecode`]), so that both threads decode and the calling thread only inserts.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender, TrySendError};

use super::codec::{self, BlockKind, Cur, DecodeError, EncodingLimits};
use crate::keyspace::Value;

/// First bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"FERRODIS";
/// Format version written (major, minor). A reader refuses a newer major.
pub const VERSION: (u8, u8) = (1, 2);
/// Header flag: block and file checksums are present (`rdbchecksum yes`).
pub const FLAG_CHECKSUMS: u8 = 1;
/// Item type of a block.
pub const ITEM_BLOCK: u8 = b'B';
/// Item type of the end marker.
pub const ITEM_END: u8 = b'E';
/// Block flag: the stored bytes are an lz4 block.
pub const BLOCK_LZ4: u8 = 1;
/// Block flag: the next item continues this block's records (one record larger than a block).
pub const BLOCK_CONTINUED: u8 = 2;
/// Raw bytes a writer aims to put in one block.
pub const BLOCK_TARGET: usize = 256 << 10;
/// Largest raw (uncompressed) block a reader accepts.
pub const MAX_BLOCK_RAW: usize = 1 << 20;
/// Fixed part of the header: magic, major, minor, flags, body length (u32 LE).
const FIXED_HEADER: usize = 8 + 3 + 4;
/// Blocks in flight between the decompressing thread and the decoding one.
const PIPELINE_DEPTH: usize = 4;

/// What the header says about the snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    /// Unix ms of the snapshot point.
    pub created_ms: u64,
    /// `env!("CARGO_PKG_VERSION")` of the writer.
    pub server_version: String,
    /// Replication id (40 hex chars).
    pub repl_id: String,
    /// Write-stream offset the snapshot corresponds to.
    pub repl_offset: u64,
    pub used_memory: u64,
    /// Key and expiry counts per non-empty db at the snapshot point.
    pub dbs: Vec<DbCount>,
    /// Free-form extra fields (e.g. "functions" = FUNCTION DUMP payload).
    pub aux: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DbCount {
    pub db: u32,
    pub keys: u64,
    pub expires: u64,
}

/// `rdbcompression` / `rdbchecksum`.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub compress: bool,
    pub checksum: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compress: true,
            checksum: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// writing

/// Streams a snapshot to `w`. Blocks arrive in any order and any mix of dbs/kinds; one call
/// = one block (split at record boundaries if `raw` is large).
pub struct SnapshotWriter<W: Write> {
    w: W,
    opts: WriteOptions,
    /// crc32 of every byte written so far.
    crc: crc32fast::Hasher,
    written: u64,
    blocks: u64,
    value_records: u64,
    expire_records: u64,
    /// Scratch buffers reused across blocks.
    head: Vec<u8>,
    packed: Vec<u8>,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(w: W, meta: &Meta, opts: WriteOptions) -> io::Result<Self> {
        let mut sw = SnapshotWriter {
            w,
            opts,
            crc: crc32fast::Hasher::new(),
            written: 0,
            blocks: 0,
            value_records: 0,
            expire_records: 0,
            head: Vec::new(),
            packed: Vec::new(),
        };
        let header = encode_header(meta, opts.checksum)?;
        sw.put(&header)?;
        let crc = if opts.checksum {
            crc32fast::hash(&header)
        } else {
            0
        };
        sw.put(&crc.to_le_bytes())?;
        Ok(sw)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.crc.update(b);
        self.written += b.len() as u64;
        Ok(())
    }

    /// Writes the records in `raw` (encoded with [`codec::encode_value`] or
    /// [`codec::encode_expire`] according to `kind`). Fails with `InvalidData` if `raw` does
    /// not hold whole records.
    pub fn write_block(&mut self, db: u32, kind: BlockKind, raw: &[u8]) -> io::Result<()> {
        let mut c = Cur::new(raw);
        let (mut start, mut records, mut total) = (0, 0u64, 0u64);
        while !c.at_end() {
            let rec = c.pos;
            codec::skip_record(&mut c, kind).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("raw block: {}", e.reason),
                )
            })?;
            total += 1;
            if c.pos - start > BLOCK_TARGET && rec > start {
                self.emit(db, kind, &raw[start..rec], records, false)?;
                (start, records) = (rec, 0);
            }
            records += 1;
            if c.pos - start > BLOCK_TARGET {
                // One record larger than a block: a run of continued blocks.
                self.emit_split(db, kind, &raw[start..c.pos])?;
                (start, records) = (c.pos, 0);
            }
        }
        if records > 0 {
            self.emit(db, kind, &raw[start..], records, false)?;
        }
        match kind {
            BlockKind::Values => self.value_records += total,
            BlockKind::Expires => self.expire_records += total,
        }
        Ok(())
    }

    /// Writes one record of more than [`BLOCK_TARGET`] bytes as a run of continued blocks.
    fn emit_split(&mut self, db: u32, kind: BlockKind, rec: &[u8]) -> io::Result<()> {
        let mut pieces = rec.chunks(BLOCK_TARGET).peekable();
        let mut first = true;
        while let Some(p) = pieces.next() {
            let more = pieces.peek().is_some();
            self.emit(db, kind, p, u64::from(first), more)?;
            first = false;
        }
        Ok(())
    }

    /// Writes one block: header, crc32, stored bytes.
    fn emit(
        &mut self,
        db: u32,
        kind: BlockKind,
        raw: &[u8],
        records: u64,
        continued: bool,
    ) -> io::Result<()> {
        let mut flags = if continued { BLOCK_CONTINUED } else { 0 };
        let mut lz4 = false;
        if self.opts.compress {
            self.packed
                .resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
            if let Ok(n) = lz4_flex::block::compress_into(raw, &mut self.packed) {
                self.packed.truncate(n);
                lz4 = n < raw.len();
            }
        }
        if lz4 {
            flags |= BLOCK_LZ4;
        }
        let stored_len = if lz4 { self.packed.len() } else { raw.len() };
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        head.push(ITEM_BLOCK);
        codec::put_varint(&mut head, u64::from(db));
        head.push(kind.to_byte());
        head.push(flags);
        codec::put_varint(&mut head, records);
        codec::put_varint(&mut head, raw.len() as u64);
        codec::put_varint(&mut head, stored_len as u64);
        let stored = if lz4 {
            std::mem::take(&mut self.packed)
        } else {
            Vec::new()
        };
        let body: &[u8] = if lz4 { &stored } else { raw };
        let crc = if self.opts.checksum {
            let mut h = crc32fast::Hasher::new();
            h.update(&head);
            h.update(body);
            h.finalize()
        } else {
            0
        };
        head.extend_from_slice(&crc.to_le_bytes());
        let r = self.put(&head).and_then(|_| self.put(body));
        self.head = head;
        if lz4 {
            self.packed = stored;
        }
        self.blocks += 1;
        r
    }

    /// Writes the end marker with the whole-file checksum; returns the sink (the caller
    /// fsyncs it).
    pub fn finish(mut self) -> io::Result<W> {
        let mut end = vec![ITEM_END];
        codec::put_varint(&mut end, self.blocks);
        codec::put_varint(&mut end, self.value_records);
        codec::put_varint(&mut end, self.expire_records);
        self.put(&end)?;
        let crc = if self.opts.checksum {
            self.crc.clone().finalize()
        } else {
            0
        };
        self.put(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    codec::put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The fixed header and the header body (without the header crc).
fn encode_header(meta: &Meta, checksum: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    codec::put_varint(&mut body, meta.created_ms);
    put_str(&mut body, meta.server_version.as_bytes());
    put_str(&mut body, meta.repl_id.as_bytes());
    codec::put_varint(&mut body, meta.repl_offset);
    codec::put_varint(&mut body, meta.used_memory);
    codec::put_varint(&mut body, meta.dbs.len() as u64);
    for d in &meta.dbs {
        codec::put_varint(&mut body, u64::from(d.db));
        codec::put_varint(&mut body, d.keys);
        codec::put_varint(&mut body, d.expires);
    }
    codec::put_varint(&mut body, meta.aux.len() as u64);
    for (name, value) in &meta.aux {
        put_str(&mut body, name.as_bytes());
        put_str(&mut body, value);
    }
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "snapshot header too large"))?;
    let mut out = Vec::with_capacity(FIXED_HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[
        VERSION.0,
        VERSION.1,
        if checksum { FLAG_CHECKSUMS } else { 0 },
    ]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// loading

/// Where loaded records go (the server implements it over the keyspace).
pub trait LoadSink {
    /// Called first, with the header (pre-size tables).
    fn meta(&mut self, meta: &Meta) -> Result<(), String>;
    fn value(&mut self, db: u32, key: &[u8], value: Value) -> Result<(), String>;
    fn expire(&mut self, db: u32, key: &[u8], at_ms: u64) -> Result<(), String>;
    /// File bytes verified so far, for INFO `loading_*`.
    fn progress(&mut self, _done: u64, _total: u64) {}
    /// The type id a value record was stored with (see `codec::types`), called before
    /// [`LoadSink::value`]; for statistics (`ferrodis-check-snapshot`).
    fn stored_type(&mut self, _db: u32, _type_id: u8) {}
    /// One block read: its db, kind, raw and stored sizes; for statistics.
    fn block(&mut self, _db: u32, _kind: BlockKind, _raw_len: u64, _stored_len: u64) {}
}

/// A load failure: the file offset it refers to and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for LoadError {}

fn lerr<T>(offset: usize, reason: impl Into<String>) -> Result<T, LoadError> {
    Err(LoadError {
        offset: offset as u64,
        reason: reason.into(),
    })
}

/// Converts a decode error at `base + e.pos` into a load error.
fn at(base: usize) -> impl Fn(DecodeError) -> LoadError {
    move |e| LoadError {
        offset: (base + e.pos) as u64,
        reason: e.reason,
    }
}

/// The format version of a snapshot file, if it starts with the magic.
pub fn format_version(bytes: &[u8]) -> Option<(u8, u8)> {
    (bytes.len() >= 10 && &bytes[..8] == MAGIC).then(|| (bytes[8], bytes[9]))
}

/// What an error about something unknown adds when the file is newer than this reader.
fn newer_note(newer: Option<&str>) -> String {
    match newer {
        Some(v) => format!(
            " (the file's format {v} is newer than this reader's {}.{})",
            VERSION.0, VERSION.1
        ),
        None => String::new(),
    }
}

/// The parsed header.
struct Header {
    meta: Meta,
    /// "1.3" when the file is newer (minor) than this reader, for error messages.
    newer: Option<String>,
    checksums: bool,
    /// Offset of the first item.
    end: usize,
}

fn read_header(bytes: &[u8]) -> Result<Header, LoadError> {
    if bytes.len() < 8 {
        return lerr(bytes.len(), "unexpected end of file in the magic");
    }
    if &bytes[..8] != MAGIC {
        return lerr(0, "not a ferrodis snapshot (bad magic)");
    }
    let mut c = Cur::new(bytes);
    c.pos = 8;
    let hdr_eof = |e: DecodeError| LoadError {
        offset: e.pos as u64,
        reason: e
            .reason
            .replace("unexpected end of ", "unexpected end of file in the "),
    };
    let (major, minor) = (
        c.u8("version").map_err(hdr_eof)?,
        c.u8("version").map_err(hdr_eof)?,
    );
    if major != VERSION.0 {
        return lerr(
            8,
            format!(
                "unsupported snapshot format version {major}.{minor} (this reader reads {}.x)",
                VERSION.0
            ),
        );
    }
    let newer = (minor > VERSION.1).then(|| format!("{major}.{minor}"));
    let flags = c.u8("flags").map_err(hdr_eof)?;
    if flags & !FLAG_CHECKSUMS != 0 {
        let note = newer_note(newer.as_deref());
        return lerr(10, format!("unknown header flags {flags:#04x}{note}"));
    }
    let len = c.u32_le("header length").map_err(hdr_eof)? as usize;
    let body_at = c.pos;
    let body = c.take(len, "header").map_err(hdr_eof)?;
    let stored_crc = c.u32_le("header checksum").map_err(hdr_eof)?;
    let checksums = flags & FLAG_CHECKSUMS != 0;
    if checksums && crc32fast::hash(&bytes[..body_at + len]) != stored_crc {
        return lerr(body_at + len, "header checksum mismatch");
    }
    // Without checksums every checksum field is 0, so a damaged flags byte is still caught.
    if !checksums && stored_crc != 0 {
        return lerr(
            body_at + len,
            "header checksum present but the checksum flag is off",
        );
    }
    let meta = read_meta(body, newer.is_some()).map_err(at(body_at))?;
    Ok(Header {
        meta,
        newer,
        checksums,
        end: c.pos,
    })
}

fn read_string(c: &mut Cur<'_>, what: &str) -> Result<String, DecodeError> {
    let at = c.pos;
    let b = c.bytes(what)?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError {
        pos: at,
        reason: format!("{what} is not UTF-8"),
    })
}

fn read_meta(body: &[u8], newer: bool) -> Result<Meta, DecodeError> {
    let mut c = Cur::new(body);
    let mut m = Meta {
        created_ms: c.varint("header: created_ms")?,
        server_version: read_string(&mut c, "header: server_version")?,
        repl_id: read_string(&mut c, "header: repl_id")?,
        repl_offset: c.varint("header: repl_offset")?,
        used_memory: c.varint("header: used_memory")?,
        ..Meta::default()
    };
    let n = c.varint("header: db count")?;
    for _ in 0..n {
        let at = c.pos;
        let db = c.varint("header: db")?;
        let db = u32::try_from(db).map_err(|_| DecodeError {
            pos: at,
            reason: format!("db number {db} too large"),
        })?;
        let keys = c.varint("header: keys")?;
        let expires = c.varint("header: expires")?;
        m.dbs.push(DbCount { db, keys, expires });
    }
    let n = c.varint("header: aux count")?;
    for _ in 0..n {
        let name = read_string(&mut c, "header: aux name")?;
        let value = c.bytes("header: aux value")?.to_vec();
        m.aux.push((name, value));
    }
    // A newer minor may append fields; ours must end here.
    if !c.at_end() && !newer {
        return c.err(format!("{} trailing bytes in the header", c.left()));
    }
    Ok(m)
}

/// Bytes of a block, borrowed from the file when stored, decompressed otherwise.
enum Data<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Data<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Borrowed(b) => b,
            Data::Owned(v) => v,
        }
    }
}

/// A verified block, from the reading thread to the decoding one.
struct Block<'a> {
    offset: usize,
    /// File offset just past the block.
    end: usize,
    db: u32,
    kind: BlockKind,
    continued: bool,
    /// Neither continued nor continuing another block: its records are whole.
    whole: bool,
    records: u64,
    stored_len: usize,
    data: Data<'a>,
    /// Its value records, when the reading thread decoded them (see [`predecode`]).
    pre: Option<Predecoded>,
}

/// A value record decoded ahead of the decoding thread.
struct Decoded {
    /// Where the record starts in the block's raw bytes, for errors.
    rec: usize,
    /// The key, as a range of the block's raw bytes.
    key: std::ops::Range<usize>,
    type_id: u8,
    value: Value,
}

/// A block's value records decoded ahead, up to the first fault if there is one: the decoding
/// thread hands them to the sink and then reports that fault, exactly as if it had decoded
/// the block itself.
struct Predecoded {
    records: Vec<Decoded>,
    fault: Option<(usize, String)>,
}

/// What the reading thread sends.
enum Msg<'a> {
    Block(Block<'a>),
    /// End marker read and the file checksum verified: (value records, expire records, offset).
    End(u64, u64, usize),
    Err(LoadError),
}

/// Verifies and decodes a whole snapshot held in memory.
pub fn load(
    bytes: &[u8],
    limits: EncodingLimits,
    sink: &mut impl LoadSink,
) -> Result<Meta, LoadError> {
    let hdr = read_header(bytes)?;
    sink.meta(&hdr.meta).map_err(|r| LoadError {
        offset: 0,
        reason: r,
    })?;
    let start = hdr.end;
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(PIPELINE_DEPTH);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
        let hdr_ref = &hdr;
        let spawned = std::thread::Builder::new()
            .name("snapshot-read".into())
            .spawn_scoped(s, move || {
                let mut r = BlockReader {
                    bytes,
                    hdr: hdr_ref,
                    tx,
                    recycle: recycle_rx,
                    lim: limits,
                };
                r.run(start);
            });
        if let Err(e) = spawned {
            return lerr(
                start,
                format!("cannot start the snapshot reading thread: {e}"),
            );
        }
        decode_all(bytes.len(), &hdr, rx, recycle_tx, &limits, sink)
    })?;
    Ok(hdr.meta)
}

/// The reading thread: walks the items, verifies and decompresses blocks.
struct BlockReader<'a, 'h> {
    bytes: &'a [u8],
    hdr: &'h Header,
    tx: SyncSender<Msg<'a>>,
    recycle: Receiver<Vec<u8>>,
    lim: EncodingLimits,
}

impl<'a> BlockReader<'a, '_> {
    fn run(&mut self, start: usize) {
        let mut file_crc = crc32fast::Hasher::new();
        file_crc.update(&self.bytes[..start.min(self.bytes.len())]);
        let mut c = Cur::new(self.bytes);
        c.pos = start;
        let mut blocks = 0u64;
        let mut pending: Option<(u32, BlockKind)> = None;
        loop {
            let msg = match self.item(&mut c, &mut file_crc, &mut pending, &mut blocks) {
                Ok(m) => m,
                Err(e) => Msg::Err(e),
            };
            let last = !matches!(msg, Msg::Block(_));
            // While the decoding thread is behind, decode the block here rather than wait.
            let msg = match self.tx.try_send(msg) {
                Ok(()) if last => return,
                Ok(()) => continue,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(mut msg)) => {
                    if let Msg::Block(b) = &mut msg {
                        self.help(b);
                    }
                    msg
                }
            };
            if self.tx.send(msg).is_err() || last {
                return;
            }
        }
    }

    /// Decodes the value records of a whole block for the decoding thread.
    fn help(&self, b: &mut Block<'_>) {
        if b.kind == BlockKind::Values && b.whole {
            let note = self.newer_note();
            b.pre = Some(predecode(b.data.bytes(), b.records, &note, &self.lim));
        }
    }

    fn newer_note(&self) -> String {
        newer_note(self.hdr.newer.as_deref())
    }

    /// Reads the item at `c`: a block, or the end marker.
    fn item(
        &mut self,
        c: &mut Cur<'a>,
        file_crc: &mut crc32fast::Hasher,
        pending: &mut Option<(u32, BlockKind)>,
        blocks: &mut u64,
    ) -> Result<Msg<'a>, LoadError> {
        let offset = c.pos;
        let eof = |e: DecodeError| LoadError {
            offset: e.pos as u64,
            reason: e
                .reason
                .replace("unexpected end of ", "unexpected end of file in "),
        };
        match c.u8("item type").map_err(eof)? {
            ITEM_BLOCK => {
                let b = self.block(c, offset, file_crc).map_err(eof)??;
                if let Some((db, kind)) = *pending {
                    if (db, kind) != (b.db, b.kind) {
                        return lerr(
                            offset,
                            "continued block followed by a block of another db or kind",
                        );
                    }
                }
                let mut b = b;
                b.whole = pending.is_none() && !b.continued;
                *pending = b.continued.then_some((b.db, b.kind));
                *blocks += 1;
                Ok(Msg::Block(b))
            }
            ITEM_END => {
                if pending.is_some() {
                    return lerr(offset, "end marker after a continued block");
                }
                let n_blocks = c.varint("end marker").map_err(eof)?;
                let values = c.varint("end marker").map_err(eof)?;
                let expires = c.varint("end marker").map_err(eof)?;
                file_crc.update(&self.bytes[offset..c.pos]);
                let crc_at = c.pos;
                let crc = c.u32_le("end marker").map_err(eof)?;
                if n_blocks != *blocks {
                    return lerr(
                        offset,
                        format!("end marker counts {n_blocks} blocks, file has {blocks}"),
                    );
                }
                let want = if self.hdr.checksums {
                    file_crc.clone().finalize()
                } else {
                    0
                };
                if want != crc {
                    return lerr(crc_at, "file checksum mismatch");
                }
                if !c.at_end() {
                    return lerr(c.pos, format!("{} bytes after the end marker", c.left()));
                }
                Ok(Msg::End(values, expires, offset))
            }
            t => lerr(
                offset,
                format!("unknown item type {t:#04x}{}", self.newer_note()),
            ),
        }
    }

    /// Reads a block after its type byte. The outer error is a truncation (mapped by the
    /// caller), the inner one any other fault.
    #[allow(clippy::type_complexity)]
    fn block(
        &mut self,
        c: &mut Cur<'a>,
        offset: usize,
        file_crc: &mut crc32fast::Hasher,
    ) -> Result<Result<Block<'a>, LoadError>, DecodeError> {
        let db_at = c.pos;
        let db = c.varint("block header")?;
        let kind_at = c.pos;
        let kind = c.u8("block header")?;
        let flags_at = c.pos;
        let flags = c.u8("block header")?;
        let records = c.varint("block header")?;
        let raw_at = c.pos;
        let raw_len = c.varint("block header")?;
        let stored_at = c.pos;
        let stored_len = c.varint("block header")?;
        let head_end = c.pos;
        let crc = c.u32_le("block header")?;
        let Ok(db) = u32::try_from(db) else {
            return Ok(lerr(db_at, format!("db number {db} too large")));
        };
        let Some(kind) = BlockKind::from_byte(kind) else {
            return Ok(lerr(
                kind_at,
                format!("unknown block kind {kind}{}", self.newer_note()),
            ));
        };
        if flags & !(BLOCK_LZ4 | BLOCK_CONTINUED) != 0 {
            return Ok(lerr(
                flags_at,
                format!("unknown block flags {flags:#04x}{}", self.newer_note()),
            ));
        }
        if raw_len == 0 || raw_len > MAX_BLOCK_RAW as u64 {
            return Ok(lerr(
                raw_at,
                format!("block raw length {raw_len} out of range 1..={MAX_BLOCK_RAW}"),
            ));
        }
        let lz4 = flags & BLOCK_LZ4 != 0;
        // lz4 is only used when it makes the block smaller.
        let max_stored = if lz4 { raw_len - 1 } else { raw_len };
        if (!lz4 && stored_len != raw_len) || stored_len == 0 || stored_len > max_stored {
            return Ok(lerr(
                stored_at,
                format!("block stored length {stored_len} does not fit raw length {raw_len}"),
            ));
        }
        let stored = c.take(stored_len as usize, "block")?;
        let mut h = crc32fast::Hasher::new();
        h.update(stored);
        if self.hdr.checksums {
            let mut bh = crc32fast::Hasher::new();
            bh.update(&self.bytes[offset..head_end]);
            bh.combine(&h);
            if bh.finalize() != crc {
                return Ok(lerr(offset, "block checksum mismatch"));
            }
        } else if crc != 0 {
            return Ok(lerr(
                head_end,
                "block checksum present but the checksum flag is off",
            ));
        }
        file_crc.update(&self.bytes[offset..head_end + 4]);
        file_crc.combine(&h);
        let data = if lz4 {
            let mut buf = self.recycle.try_recv().unwrap_or_default();
            // A recycled buffer is only cut to size, not zeroed again: the length check below
            // makes sure the block overwrote every byte that is kept.
            buf.resize(raw_len as usize, 0);
            match lz4_flex::block::decompress_into(stored, &mut buf) {
                Ok(n) if n == raw_len as usize => Data::Owned(buf),
                Ok(n) => {
                    return Ok(lerr(
                        offset,
                        format!("lz4 block holds {n} bytes, header says {raw_len}"),
                    ))
                }
                Err(e) => return Ok(lerr(offset, format!("bad lz4 block: {e}"))),
            }
        } else {
            Data::Borrowed(stored)
        };
        Ok(Ok(Block {
            offset,
            end: c.pos,
            db,
            kind,
            continued: flags & BLOCK_CONTINUED != 0,
            whole: false,
            records,
            stored_len: stored_len as usize,
            data,
            pre: None,
        }))
    }
}

/// Totals the decoding side keeps.
#[derive(Default)]
struct Counts {
    values: u64,
    expires: u64,
}

/// The decoding thread: records of each segment (a block, or a run of continued blocks) into
/// the sink.
fn decode_all(
    total: usize,
    hdr: &Header,
    rx: Receiver<Msg<'_>>,
    recycle: Sender<Vec<u8>>,
    lim: &EncodingLimits,
    sink: &mut impl LoadSink,
) -> Result<(), LoadError> {
    let mut counts = Counts::default();
    let newer = hdr.newer.as_deref();
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_records = 0u64;
    let mut carry_offset = 0usize;
    loop {
        let Ok(msg) = rx.recv() else {
            return lerr(total, "snapshot reader stopped unexpectedly");
        };
        let mut b = match msg {
            Msg::Block(b) => b,
            Msg::Err(e) => return Err(e),
            Msg::End(values, expires, offset) => {
                if (values, expires) != (counts.values, counts.expires) {
                    return lerr(
                        offset,
                        format!(
                            "end marker counts {values} value and {expires} expiry records, \
                             file has {} and {}",
                            counts.values, counts.expires
                        ),
                    );
                }
                sink.progress(total as u64, total as u64);
                return Ok(());
            }
        };
        sink.block(
            b.db,
            b.kind,
            b.data.bytes().len() as u64,
            b.stored_len as u64,
        );
        if b.continued || !carry.is_empty() {
            if carry.is_empty() {
                carry_offset = b.offset;
                carry_records = 0;
            }
            carry.extend_from_slice(b.data.bytes());
            carry_records += b.records;
            if b.continued {
                continue;
            }
            let seg = std::mem::take(&mut carry);
            let r = decode_segment(
                &seg,
                carry_offset,
                (b.db, b.kind),
                carry_records,
                newer,
                lim,
                sink,
                &mut counts,
            );
            carry = seg;
            carry.clear();
            r?;
        } else if let Some(pre) = b.pre.take() {
            let seg = b.data.bytes();
            feed_predecoded(seg, b.offset, b.db, pre, sink, &mut counts)?;
        } else {
            let seg = b.data.bytes();
            decode_segment(
                seg,
                b.offset,
                (b.db, b.kind),
                b.records,
                newer,
                lim,
                sink,
                &mut counts,
            )?;
        }
        if let Data::Owned(v) = b.data {
            let _ = recycle.send(v);
        }
        sink.progress(b.end as u64, total as u64);
    }
}

/// Decodes the records of one segment; errors name the segment's first block offset and the
/// record's position in the raw bytes.
#[allow(clippy::too_many_arguments)]
fn decode_segment(
    seg: &[u8],
    offset: usize,
    (db, kind): (u32, BlockKind),
    records: u64,
    newer: Option<&str>,
    lim: &EncodingLimits,
    sink: &mut impl LoadSink,
    counts: &mut Counts,
) -> Result<(), LoadError> {
    let fail = |pos: usize, reason: String| record_error(offset, db, pos, reason);
    let note = newer_note(newer);
    let mut c = Cur::new(seg);
    let mut n = 0u64;
    while !c.at_end() {
        let rec = c.pos;
        match kind {
            BlockKind::Values => {
                let r =
                    codec::decode_value(&mut c, lim, &note).map_err(|e| fail(e.pos, e.reason))?;
                sink.stored_type(db, r.type_id);
                sink.value(db, r.key, r.value).map_err(|e| fail(rec, e))?;
                counts.values += 1;
            }
            BlockKind::Expires => {
                let (key, at_ms) =
                    codec::decode_expire(&mut c).map_err(|e| fail(e.pos, e.reason))?;
                sink.expire(db, key, at_ms).map_err(|e| fail(rec, e))?;
                counts.expires += 1;
            }
        }
        n += 1;
    }
    if n != records {
        return Err(fail(
            seg.len(),
            format!("block header counts {records} records, found {n}"),
        ));
    }
    Ok(())
}

/// Decodes the value records of a whole block (on the reading thread), stopping at the first
/// fault; `records` is the count the block header gives, checked as [`decode_segment`] does.
fn predecode(seg: &[u8], records: u64, note: &str, lim: &EncodingLimits) -> Predecoded {
    let mut c = Cur::new(seg);
    let mut out = Vec::with_capacity(usize::try_from(records).unwrap_or(0).min(seg.len()));
    while !c.at_end() {
        let rec = c.pos;
        match codec::decode_value(&mut c, lim, note) {
            Ok(r) => {
                // The key is a subslice of `seg`: its offset is a pointer difference.
                let start = r.key.as_ptr() as usize - seg.as_ptr() as usize;
                let key = start..start + r.key.len();
                out.push(Decoded {
                    rec,
                    key,
                    type_id: r.type_id,
                    value: r.value,
                });
            }
            Err(e) => {
                return Predecoded {
                    records: out,
                    fault: Some((e.pos, e.reason)),
                };
            }
        }
    }
    let fault = (out.len() as u64 != records).then(|| {
        (
            seg.len(),
            format!("block header counts {records} records, found {}", out.len()),
        )
    });
    Predecoded {
        records: out,
        fault,
    }
}

/// The error for a bad record at raw byte `pos` of the block of database `db` at `offset`.
fn record_error(offset: usize, db: u32, pos: usize, reason: String) -> LoadError {
    LoadError {
        offset: offset as u64,
        reason: format!("block of db {db}, record at raw byte {pos}: {reason}"),
    }
}

/// Hands the records [`predecode`] decoded to the sink, then reports its fault if it met one;
/// errors read as [`decode_segment`]'s.
fn feed_predecoded(
    seg: &[u8],
    offset: usize,
    db: u32,
    pre: Predecoded,
    sink: &mut impl LoadSink,
    counts: &mut Counts,
) -> Result<(), LoadError> {
    let fail = |pos: usize, reason: String| record_error(offset, db, pos, reason);
    for d in pre.records {
        let key = seg.get(d.key).unwrap_or_default();
        sink.stored_type(db, d.type_id);
        sink.value(db, key, d.value).map_err(|e| fail(d.rec, e))?;
        counts.values += 1;
    }
    match pre.fault {
        Some((pos, reason)) => Err(fail(pos, reason)),
        None => Ok(()),
    }
}

/// Decodes the raw records of one block (as passed to [`SnapshotWriter::write_block`]) into
/// `sink`, without a file around them; returns how many there were. For tests and fuzzing.
pub fn decode_records(
    raw: &[u8],
    db: u32,
    kind: BlockKind,
    lim: &EncodingLimits,
    sink: &mut impl LoadSink,
) -> Result<u64, LoadError> {
    let mut counts = Counts::default();
    let mut c = Cur::new(raw);
    let mut n = 0u64;
    while !c.at_end() && codec::skip_record(&mut c, kind).is_ok() {
        n += 1;
    }
    decode_segment(raw, 0, (db, kind), n, None, lim, sink, &mut counts)?;
    Ok(counts.values + counts.expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer runs on a thread of its own.
    #[test]
    fn writer_is_send() {
        fn send<T: Send>() {}
        send::<SnapshotWriter<std::fs::File>>();
        send::<SnapshotWriter<Vec<u8>>>();
    }

    /// Records the calls it gets; refuses a key it has seen (as the keyspace refuses a
    /// duplicate), so that sink errors are compared too.
    #[derive(Default)]
    struct Record {
        calls: Vec<String>,
        keys: Vec<Vec<u8>>,
    }

    impl LoadSink for Record {
        fn meta(&mut self, _meta: &Meta) -> Result<(), String> {
            Ok(())
        }
        fn value(&mut self, db: u32, key: &[u8], value: Value) -> Result<(), String> {
            if self.keys.iter().any(|k| k == key) {
                return Err("duplicate".into());
            }
            self.keys.push(key.to_vec());
            self.calls.push(format!("value {db} {key:?} {value:?}"));
            Ok(())
        }
        fn expire(&mut self, _db: u32, _key: &[u8], _at_ms: u64) -> Result<(), String> {
            Ok(())
        }
        fn stored_type(&mut self, db: u32, type_id: u8) {
            self.calls.push(format!("type {db} {type_id}"));
        }
    }

    /// Records decoded ahead on the reading thread reach the sink exactly as those decoded
    /// in place: same calls, same error for the same damage.
    #[test]
    fn predecoded_blocks_load_like_decoded_ones() {
        let hl = crate::keyspace::hash::HashLimits {
            max_entries: 128,
            max_value: 64,
        };
        let mut raw = Vec::new();
        let mut h = crate::keyspace::HashValue::new();
        for i in 0..20 {
            h.set(format!("f{i}").as_bytes(), b"v", hl);
        }
        codec::encode_value(&mut raw, b"h", &Value::Hash(h));
        codec::encode_value(&mut raw, b"s", &Value::from_bytes(b"text"));
        codec::encode_value(&mut raw, b"n", &Value::from_bytes(b"42"));
        codec::encode_value(&mut raw, b"s", &Value::from_bytes(b"again"));
        let lim = EncodingLimits::default();
        let load = |seg: &[u8], records: u64, ahead: bool| {
            let (mut sink, mut counts) = (Record::default(), Counts::default());
            let r = if ahead {
                let pre = predecode(seg, records, "", &lim);
                feed_predecoded(seg, 7, 3, pre, &mut sink, &mut counts)
            } else {
                let at = (3, BlockKind::Values);
                decode_segment(seg, 7, at, records, None, &lim, &mut sink, &mut counts)
            };
            (sink.calls, counts.values, r)
        };
        let mut cases = vec![
            (raw.clone(), 4),
            (raw.clone(), 5),
            (raw[..raw.len() - 1].to_vec(), 4),
        ];
        for i in 0..raw.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut bad = raw.clone();
                bad[i] ^= x;
                cases.push((bad, 4));
            }
        }
        for (seg, records) in cases {
            assert_eq!(load(&seg, records, true), load(&seg, records, false));
        }
        // The last record repeats a key: the sink's refusal names that record.
        let (_, n, r) = load(&raw, 4, true);
        let last = raw.len() - 9;
        let want = format!("block of db 3, record at raw byte {last}: duplicate");
        assert_eq!((n, r.unwrap_err().reason), (3, want));
    }

    #[test]
    fn raw_blocks_must_hold_whole_records() {
        let mut w = SnapshotWriter::new(Vec::new(), &Meta::default(), WriteOptions::default())
            .expect("in memory");
        let mut raw = Vec::new();
        codec::encode_value(&mut raw, b"key", &Value::from_bytes(b"value"));
        raw.pop();
        let e = w.write_block(0, BlockKind::Values, &raw).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "raw block: value length 5 exceeds the 4 bytes left"
        );
    }
}
