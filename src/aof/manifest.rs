//! The manifest of an append-only directory (Redis 7 multi-part layout): which base file and
//! which incremental files make up the log, in order. Specified in `formats/aof.md`.

use std::io::Write;
use std::path::Path;

/// Manifest version understood. Version 1 has no version line; a later one starts with
/// `# ferrodis-aof-manifest <n>` (a `#` line, which Redis skips), refused here when `n > 1`.
pub const MANIFEST_VERSION: u32 = 1;

/// One `file ... seq ... type ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub seq: u64,
    /// `b` base, `i` incremental, `h` history (left by a rewrite, to be deleted).
    pub kind: char,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The base file; none until a rewrite has produced one.
    pub base: Option<FileEntry>,
    /// Incremental files, in load order.
    pub incrs: Vec<FileEntry>,
    /// Files a rewrite made obsolete, to be deleted (never loaded).
    pub history: Vec<FileEntry>,
}

/// `appendonly.aof` -> `appendonly.aof.manifest`.
pub fn manifest_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

/// `appendonly.aof`, 3 -> `appendonly.aof.3.incr.aof`.
pub fn incr_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.incr.aof")
}

/// `appendonly.aof`, 2 -> `appendonly.aof.2.base.rdb`: a base in our snapshot format.
pub fn base_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.base.rdb")
}

/// Longest manifest line Redis accepts (`MANIFEST_MAX_LINE`).
const MAX_LINE: usize = 1024;

impl Manifest {
    /// Parses a manifest (ours or Redis 7's) with Redis's rules; errors carry Redis's messages.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        if text.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        for raw in text.split_inclusive('\n') {
            if raw.starts_with('#') {
                if let Some(v) = raw.strip_prefix("# ferrodis-aof-manifest ") {
                    if v.trim()
                        .parse::<u32>()
                        .map_or(true, |v| v > MANIFEST_VERSION)
                    {
                        return Err(format!("Unsupported manifest version '{}'", v.trim()));
                    }
                }
                continue;
            }
            if !raw.ends_with('\n') || raw.len() > MAX_LINE {
                return Err("The AOF manifest file contains too long line".into());
            }
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            let e = parse_line(line)?;
            match e.kind {
                'b' if m.base.is_some() => {
                    return Err("Found duplicate base file information".into())
                }
                'b' => m.base = Some(e),
                'i' => {
                    if m.incrs.last().is_some_and(|l| l.seq >= e.seq) {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incrs.push(e)
                }
                'h' => m.history.push(e),
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        Ok(m)
    }

    /// The manifest text. Version 1 writes no version line (byte for byte what Redis 7.0
    /// writes); a later version will start with `# ferrodis-aof-manifest <n>`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Redis's order: base, history, incremental files.
        for e in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let name = quote(&e.name);
            s.push_str(&format!("file {name} seq {} type {}\n", e.seq, e.kind));
        }
        s
    }

    /// Sequence number for a new base file.
    pub fn next_base_seq(&self) -> u64 {
        self.base.as_ref().map_or(1, |e| e.seq + 1)
    }

    /// Sequence number for a new incremental file.
    pub fn next_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(1, |e| e.seq + 1)
    }
}

/// A file name as Redis writes it: bare, or double-quoted with escapes when it has spaces,
/// quotes or unprintable bytes (`sdscatrepr`).
fn quote(name: &str) -> String {
    let plain = name
        .bytes()
        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\');
    if plain {
        return name.to_string();
    }
    let mut s = String::from('"');
    for c in name.bytes() {
        match c {
            b'\\' | b'"' => {
                s.push('\\');
                s.push(char::from(c));
            }
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// Splits a line into words like Redis's `sdssplitargs` (double and single quotes, escapes in
/// double quotes). `None` on unbalanced quotes.
fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let mut w: Vec<u8> = Vec::new();
        let quote = b[i];
        if quote == b'"' || quote == b'\'' {
            i += 1;
            loop {
                let c = *b.get(i)?;
                i += 1;
                if c == quote {
                    break;
                }
                if c == b'\\' && quote == b'"' {
                    let e = *b.get(i)?;
                    i += 1;
                    match e {
                        b'n' => w.push(b'\n'),
                        b'r' => w.push(b'\r'),
                        b't' => w.push(b'\t'),
                        b'x' => {
                            let hex = std::str::from_utf8(b.get(i..i + 2)?).ok()?;
                            w.push(u8::from_str_radix(hex, 16).ok()?);
                            i += 2;
                        }
                        other => w.push(other),
                    }
                } else {
                    w.push(c);
                }
            }
            if i < b.len() && !b[i].is_ascii_whitespace() {
                return None;
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        out.push(String::from_utf8(w).ok()?);
    }
}

fn parse_line(line: &str) -> Result<FileEntry, String> {
    const INVALID: &str = "Invalid AOF manifest file format";
    let words = split_args(line).ok_or(INVALID)?;
    // Fewer than 6 words is refused, more is allowed (forward compatibility), as in Redis.
    if words.len() < 6 || words.len() % 2 != 0 {
        return Err(INVALID.into());
    }
    let (mut name, mut seq, mut kind) = (None, 0u64, None);
    for kv in words.chunks(2) {
        match kv[0].to_ascii_lowercase().as_str() {
            "file" => name = Some(kv[1].clone()),
            "seq" => seq = kv[1].parse::<u64>().unwrap_or(0),
            "type" => kind = kv[1].chars().next(),
            _ => {}
        }
    }
    let name = name.ok_or(INVALID)?;
    if name.contains('/') {
        return Err("File can't be a path, just a filename".into());
    }
    match (seq, kind) {
        (1.., Some(kind)) => Ok(FileEntry { name, seq, kind }),
        _ => Err(INVALID.into()),
    }
}

/// Replaces `dir/name` with `text` atomically: a temporary file, fsynced, renamed over it, and
/// the directory fsynced, so a crash leaves either the old manifest or the new one.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!("temp-{name}"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Makes a directory's entries (created, renamed files) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_manifests_and_round_trips_ours() {
        let redis = "file appendonly.aof.1.base.rdb seq 1 type b\n\
                     file appendonly.aof.1.incr.aof seq 1 type i\n\
                     file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(redis).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.next_incr_seq(), 3);
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert!(Manifest::parse("# ferrodis-aof-manifest 9\n").is_err());
        assert_eq!(
            Manifest::parse("").unwrap_err(),
            "Found an empty AOF manifest"
        );
        assert_eq!(
            Manifest::parse("file a seq 1 type i\n\n").unwrap_err(),
            "Invalid AOF manifest file format"
        );
        let h = "file a.1.base.rdb seq 1 type b\nfile a.1.incr.aof seq 1 type h\n\
                 file a.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(h).unwrap();
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.render(), h);
        let spaced = Manifest {
            history: Vec::new(),
            base: None,
            incrs: vec![FileEntry {
                name: "my aof.1.incr.aof".into(),
                seq: 1,
                kind: 'i',
            }],
        };
        assert_eq!(Manifest::parse(&spaced.render()).unwrap(), spaced);
        assert!(Manifest::parse("file ../x seq 1 type i\n").is_err());
    }
}
