//! The bytes of an append-only file: record framing, a strict RESP command parser, and a
//! [`Scanner`] that walks a file record by record, telling a torn tail from a corrupted record.
//! Shared by the loader and `ferrodis-check-aof`. The layout is specified in `formats/aof.md`.

use std::io::Read;

/// Version of the record framing (`formats/aof.md`): 2 adds the stream notes (`#O:`, `#G:`).
pub const FRAME_VERSION: u32 = 2;
/// Prefix of a frame header line: `#F <len> <crc32-hex> <header-crc32-hex>\r\n`.
const FRAME_TAG: &[u8] = b"#F ";
/// Longest annotation line accepted (Redis's `AOF_ANNOTATION_LINE_MAX_LEN`).
const LINE_MAX: usize = 1024;
/// Read granularity.
const CHUNK: usize = 256 * 1024;

/// Appends the frame header for `payload` to `out`.
pub fn frame_header(out: &mut Vec<u8>, payload: &[u8]) {
    let fields = format!("{} {:08x}", payload.len(), crc32fast::hash(payload));
    let check = crc32fast::hash(fields.as_bytes());
    out.extend_from_slice(format!("#F {fields} {check:08x}\r\n").as_bytes());
}

/// Prefix of a stream-origin note: `#O:<replid> <offset> <crc32-hex>\r\n`.
const ORIGIN_TAG: &[u8] = b"#O:";
/// Prefix of a stream-gap note: `#G:<hex bytes> <crc32-hex>\r\n`.
const GAP_TAG: &[u8] = b"#G:";
/// Largest stream gap one note carries (its hex text stays well under [`LINE_MAX`]).
pub const GAP_MAX: usize = 400;

/// A stream note (framing 2): where the log's payload bytes sit in the replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The next payload byte is byte `offset` (0-based) of the stream of history `replid`.
    Origin { replid: String, offset: u64 },
    /// These stream bytes come next but are not in the log (PINGs, `REPLCONF GETACK`s).
    Gap(Vec<u8>),
}

/// Appends `note` as an annotation line, followed by the CRC-32 of its text.
pub fn write_note(out: &mut Vec<u8>, note: &Note) {
    use std::fmt::Write;
    let mut text = String::new();
    match note {
        Note::Origin { replid, offset } => {
            let _ = write!(text, "#O:{replid} {offset}");
        }
        Note::Gap(bytes) => {
            text.push_str("#G:");
            for b in bytes {
                let _ = write!(text, "{b:02x}");
            }
        }
    }
    let check = crc32fast::hash(text.as_bytes());
    out.extend_from_slice(format!("{text} {check:08x}\r\n").as_bytes());
}

/// Reads a note line (without its CRLF): `None` if the line is not a note, `Some(Err)` if it is
/// one but damaged.
pub fn parse_note(line: &[u8]) -> Option<Result<Note, ()>> {
    if !line.starts_with(ORIGIN_TAG) && !line.starts_with(GAP_TAG) {
        return None;
    }
    Some(parse_note_text(line).ok_or(()))
}

fn parse_note_text(line: &[u8]) -> Option<Note> {
    let s = std::str::from_utf8(line).ok()?;
    let (text, check) = s.rsplit_once(' ')?;
    if check.len() != 8 || u32::from_str_radix(check, 16).ok()? != crc32fast::hash(text.as_bytes())
    {
        return None;
    }
    if let Some(rest) = text.strip_prefix("#O:") {
        let (replid, offset) = rest.split_once(' ')?;
        let ok_id = replid.len() == 40 && replid.bytes().all(|c| c.is_ascii_hexdigit());
        return ok_id.then(|| offset.parse().ok()).flatten().map(|offset| Note::Origin {
            replid: replid.to_string(),
            offset,
        });
    }
    let hex = text.strip_prefix("#G:")?.as_bytes();
    if hex.len() % 2 != 0 || hex.is_empty() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> =
        hex.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect();
    bytes.map(Note::Gap)
}

/// A parsed command and the bytes it took.
pub type Parsed = (Vec<Vec<u8>>, usize);

/// Parses one RESP multibulk command at the start of `buf`, strictly (as Redis's loader does:
/// `*<argc>` then `$<len>` bulks, each followed by CRLF). `Ok(None)` means more bytes are
/// needed. Allocation is bounded by `buf.len()`, whatever the lengths claim.
pub fn parse_command(buf: &[u8]) -> Result<Option<Parsed>, String> {
    let Some((argc, mut pos)) = header_line(buf, 0, b'*')? else {
        return Ok(None);
    };
    if argc < 1 {
        return Err(format!("invalid multibulk length {argc}"));
    }
    // Each argument takes at least 6 bytes (`$0\r\n\r\n`).
    let mut argv = Vec::with_capacity((argc as usize).min(buf.len() / 6 + 1));
    for _ in 0..argc {
        let Some((len, p)) = header_line(buf, pos, b'$')? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| format!("invalid bulk length {len}"))?;
        let Some(end) = p
            .checked_add(len)
            .filter(|e| e.saturating_add(2) <= buf.len())
        else {
            return Ok(None);
        };
        if &buf[end..end + 2] != b"\r\n" {
            return Err("bulk not terminated by CRLF".into());
        }
        argv.push(buf[p..end].to_vec());
        pos = end + 2;
    }
    Ok(Some((argv, pos)))
}

/// Reads `<tag><integer>\r\n` at `pos`: the integer and the position after the line.
fn header_line(buf: &[u8], pos: usize, tag: u8) -> Result<Option<(i64, usize)>, String> {
    let rest = &buf[pos.min(buf.len())..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] != tag {
        return Err(format!(
            "expected '{}', got '{}'",
            char::from(tag),
            rest[0].escape_ascii()
        ));
    }
    let Some(nl) = rest.iter().take(32).position(|&c| c == b'\n') else {
        return if rest.len() >= 32 {
            Err("header line too long".into())
        } else {
            Ok(None)
        };
    };
    if nl < 2 || rest[nl - 1] != b'\r' {
        return Err("header line not terminated by CRLF".into());
    }
    let n = std::str::from_utf8(&rest[1..nl - 1])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| "invalid length".to_string())?;
    Ok(Some((n, pos + nl + 1)))
}

/// One step of a [`Scanner`].
#[derive(Debug)]
pub enum Step {
    /// Complete commands, and the file offset just past them.
    Commands { cmds: Vec<Vec<Vec<u8>>>, end: u64 },
    /// The file ended cleanly.
    End,
    /// The file ends inside a record (or inside a MULTI with no EXEC): everything before
    /// `valid` is whole.
    Torn { valid: u64, reason: String },
    /// A record that cannot be right, at `offset`.
    Corrupt { offset: u64, reason: String },
}

/// Walks a file record by record: frames (`#F`), other `#` annotations (skipped, like Redis),
/// and plain RESP commands (files written by Redis).
pub struct Scanner<R: Read> {
    r: R,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Offset of a plain `MULTI` whose `EXEC` has not been seen.
    multi_at: Option<u64>,
    /// Frames seen (a file of frames must not switch to plain commands).
    pub frames: u64,
    /// Plain commands seen.
    pub plain: u64,
    /// Stream notes read since the caller last drained them, when `keep_notes` (they precede
    /// the records returned after them).
    pub notes: Vec<Note>,
    pub keep_notes: bool,
}

impl<R: Read> Scanner<R> {
    pub fn new(r: R) -> Self {
        Scanner {
            r,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
            multi_at: None,
            frames: 0,
            plain: 0,
            notes: Vec::new(),
            keep_notes: false,
        }
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads until `need` bytes are available past `pos`, or the end of the file.
    fn fill(&mut self, need: usize) -> std::io::Result<()> {
        while self.avail() < need && !self.eof {
            if self.pos > 0 && self.pos >= self.buf.len() / 2 {
                self.buf.drain(..self.pos);
                self.base += self.pos as u64;
                self.pos = 0;
            }
            let old = self.buf.len();
            // Never more than a chunk at a time: the buffer grows only as data really arrives,
            // whatever length a damaged header claims.
            self.buf.resize(old + CHUNK, 0);
            let n = self.r.read(&mut self.buf[old..])?;
            self.buf.truncate(old + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    fn torn(&self, at: u64, reason: &str) -> Step {
        Step::Torn {
            valid: self.multi_at.unwrap_or(at),
            reason: reason.to_string(),
        }
    }

    /// The next record.
    pub fn next_step(&mut self) -> std::io::Result<Step> {
        loop {
            self.fill(1)?;
            if self.avail() == 0 {
                return Ok(match self.multi_at {
                    Some(_) => self.torn(0, "MULTI without EXEC at the end of the file"),
                    None => Step::End,
                });
            }
            match self.buf[self.pos] {
                b'#' => {
                    if let Some(step) = self.annotation()? {
                        return Ok(step);
                    }
                }
                b'*' => return self.plain_command(),
                c => {
                    return Ok(Step::Corrupt {
                        offset: self.offset(),
                        reason: format!("unexpected byte '{}'", [c].escape_ascii()),
                    })
                }
            }
        }
    }

    /// An annotation line: a frame (returned) or anything else (skipped: `None`).
    fn annotation(&mut self) -> std::io::Result<Option<Step>> {
        let at = self.offset();
        self.fill(LINE_MAX)?;
        let window = &self.buf[self.pos..self.pos + self.avail().min(LINE_MAX)];
        let Some(nl) = window.iter().position(|&c| c == b'\n') else {
            return Ok(Some(if self.eof && self.avail() < LINE_MAX {
                self.torn(at, "incomplete annotation line")
            } else {
                Step::Corrupt {
                    offset: at,
                    reason: "annotation line too long".into(),
                }
            }));
        };
        let line = window[..nl]
            .strip_suffix(b"\r")
            .unwrap_or(&window[..nl])
            .to_vec();
        self.pos += nl + 1;
        if let Some(note) = parse_note(&line) {
            // Stream notes (framing 2) may come anywhere; a damaged one is corruption.
            return Ok(match note {
                Ok(n) if self.keep_notes => {
                    self.notes.push(n);
                    None
                }
                Ok(_) => None,
                Err(()) => Some(Step::Corrupt { offset: at, reason: "damaged stream note".into() }),
            });
        }
        if !line.starts_with(FRAME_TAG) {
            // Annotations are skipped (Redis's loader does the same); once frames began, only
            // frames and `#TS:` timestamps may follow (a damaged header must not pass for an
            // annotation).
            if self.frames > 0 && !line.starts_with(b"#TS:") {
                return Ok(Some(Step::Corrupt {
                    offset: at,
                    reason: "unframed data after a frame".into(),
                }));
            }
            return Ok(None);
        }
        if self.plain > 0 && self.multi_at.is_some() {
            return Ok(Some(Step::Corrupt {
                offset: at,
                reason: "frame inside a MULTI".into(),
            }));
        }
        let Some((len, crc)) = parse_frame_header(&line[FRAME_TAG.len()..]) else {
            let reason = "malformed frame header (or header checksum mismatch)".into();
            return Ok(Some(Step::Corrupt { offset: at, reason }));
        };
        // A length past the end of the file is a torn tail, never an allocation.
        self.fill(len.min(CHUNK))?;
        if self.eof && self.avail() < len {
            return Ok(Some(self.torn(at, "incomplete frame")));
        }
        self.fill(len)?;
        if self.avail() < len {
            return Ok(Some(self.torn(at, "incomplete frame")));
        }
        let payload = &self.buf[self.pos..self.pos + len];
        if crc32fast::hash(payload) != crc {
            return Ok(Some(Step::Corrupt {
                offset: at,
                reason: "frame checksum mismatch".into(),
            }));
        }
        let cmds = match parse_all(payload) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Some(Step::Corrupt {
                    offset: at,
                    reason: format!("bad frame: {e}"),
                }))
            }
        };
        self.pos += len;
        self.frames += 1;
        Ok(Some(Step::Commands {
            cmds,
            end: self.offset(),
        }))
    }

    /// One plain RESP command (a file written by Redis).
    fn plain_command(&mut self) -> std::io::Result<Step> {
        let at = self.offset();
        if self.frames > 0 {
            return Ok(Step::Corrupt {
                offset: at,
                reason: "unframed data after a frame".into(),
            });
        }
        loop {
            match parse_command(&self.buf[self.pos..]) {
                Ok(Some((argv, used))) => {
                    self.pos += used;
                    self.plain += 1;
                    if argv[0].eq_ignore_ascii_case(b"MULTI") {
                        self.multi_at = Some(at);
                    } else if argv[0].eq_ignore_ascii_case(b"EXEC") {
                        self.multi_at = None;
                    }
                    return Ok(Step::Commands {
                        cmds: vec![argv],
                        end: self.offset(),
                    });
                }
                Ok(None) if self.eof => return Ok(self.torn(at, "incomplete command")),
                Ok(None) => {
                    let more = self.avail().saturating_mul(2).max(CHUNK);
                    self.fill(more)?;
                }
                Err(e) => {
                    return Ok(Step::Corrupt {
                        offset: at,
                        reason: format!("bad command: {e}"),
                    })
                }
            }
        }
    }
}

/// Parses `<len> <crc32-hex> <header-crc32-hex>`, checking the header's own checksum so that
/// a damaged length is reported as corruption, never taken for a torn tail.
fn parse_frame_header(rest: &[u8]) -> Option<(usize, u32)> {
    let s = std::str::from_utf8(rest).ok()?;
    let (fields, check) = s.rsplit_once(' ')?;
    if u32::from_str_radix(check, 16).ok()? != crc32fast::hash(fields.as_bytes()) {
        return None;
    }
    let (len, crc) = fields.split_once(' ')?;
    Some((
        len.parse::<usize>().ok()?,
        u32::from_str_radix(crc, 16).ok()?,
    ))
}

/// Parses a frame's payload: whole commands only.
fn parse_all(mut payload: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut cmds = Vec::new();
    while !payload.is_empty() {
        match parse_command(payload)? {
            Some((argv, used)) => {
                cmds.push(argv);
                payload = &payload[used..];
            }
            None => return Err("command cut by the frame end".into()),
        }
    }
    Ok(cmds)
}

/// What a whole-file check found.
#[derive(Debug)]
pub struct Verdict {
    /// Offset up to which the file is whole.
    pub valid: u64,
    pub commands: u64,
    pub frames: u64,
    /// `Some` when the file is damaged: (offset, reason, whether it is only a torn tail).
    pub damage: Option<(u64, String, bool)>,
}

/// Scans a whole file without executing anything.
pub fn check<R: Read>(r: R) -> std::io::Result<Verdict> {
    let mut sc = Scanner::new(r);
    let mut v = Verdict {
        valid: 0,
        commands: 0,
        frames: 0,
        damage: None,
    };
    loop {
        match sc.next_step()? {
            Step::Commands { cmds, end } => {
                v.commands += cmds.len() as u64;
                v.valid = end;
            }
            Step::End => break,
            Step::Torn { valid, reason } => {
                v.damage = Some((valid, reason, true));
                v.valid = valid;
                break;
            }
            Step::Corrupt { offset, reason } => {
                v.damage = Some((offset, reason, false));
                v.valid = v.valid.min(offset);
                break;
            }
        }
    }
    if v.damage.is_none() {
        v.valid = sc.offset();
    }
    v.frames = sc.frames;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(cmds: &[&[&str]]) -> Vec<u8> {
        let mut payload = Vec::new();
        for c in cmds {
            crate::journal::encode_command(&mut payload, c);
        }
        let mut out = Vec::new();
        frame_header(&mut out, &payload);
        out.extend_from_slice(&payload);
        out
    }

    #[test]
    fn frames_and_plain_commands_scan() {
        // A Redis-written file we appended to: plain commands, then frames.
        let mut f = b"#TS:123\r\n*2\r\n$3\r\nDEL\r\n$1\r\na\r\n".to_vec();
        f.extend_from_slice(&framed(&[&["SET", "a", "1"], &["SET", "b", "2"]]));
        let v = check(&f[..]).unwrap();
        assert!(v.damage.is_none());
        assert_eq!((v.commands, v.frames, v.valid), (3, 1, f.len() as u64));
        // Timestamp annotations may come between frames.
        f.extend_from_slice(b"#TS:1700000000\r\n");
        f.extend_from_slice(&framed(&[&["SET", "c", "3"]]));
        assert!(check(&f[..]).unwrap().damage.is_none());
        // Never the other way round: a damaged frame header must not pass for plain data.
        f.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        assert!(!check(&f[..]).unwrap().damage.unwrap().2);
    }

    #[test]
    fn torn_tail_is_told_from_corruption() {
        let one = framed(&[&["SET", "a", "1"]]);
        let mut f = one.clone();
        f.extend_from_slice(&framed(&[&["SET", "b", "2"]]));
        for cut in one.len() + 1..f.len() {
            let v = check(&f[..cut]).unwrap();
            let (at, _, torn) = v.damage.unwrap();
            assert!(torn);
            assert_eq!(at, one.len() as u64);
        }
        let mut bad = f.clone();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        let (at, reason, torn) = check(&bad[..]).unwrap().damage.unwrap();
        assert!(!torn);
        assert_eq!(at, one.len() as u64);
        assert!(reason.contains("checksum"));
    }

    #[test]
    fn plain_multi_without_exec_is_torn_before_multi() {
        let f = b"*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\na\r\n";
        let (at, _, torn) = check(&f[..]).unwrap().damage.unwrap();
        assert!(torn);
        assert_eq!(at, 14);
    }

    #[test]
    fn lying_lengths_do_not_allocate() {
        let fields = "99999999999 00000000";
        let f = format!(
            "#F {fields} {:08x}\r\n*1\r\n",
            crc32fast::hash(fields.as_bytes())
        );
        assert!(check(f.as_bytes()).unwrap().damage.unwrap().2);
        // A damaged length is corruption, not a torn tail.
        let mut f = framed(&[&["SET", "a", "1"]]);
        f[3] = b'9';
        assert!(!check(&f[..]).unwrap().damage.unwrap().2);
        let f = b"*2147483647\r\n$999999999999\r\n";
        assert!(check(&f[..]).unwrap().damage.is_some());
    }
}
