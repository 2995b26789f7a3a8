//! The manifest of an append-only directory (Redis 7 multi-part layout): which base file and
//! which incremental files make up the log, in order. Specified in `formats/aof.md`.

use std::io::Write;
use std::path::Path;

/// Version written in our manifests' first line (`# ferrodis-aof-manifest 1`); Redis skips
/// `#` lines, so it still reads them.
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
}

/// `appendonly.aof` -> `appendonly.aof.manifest`.
pub fn manifest_name(appendfilename: &str) -> String {
    format!("{appendfilename}.manifest")
}

/// `appendonly.aof`, 3 -> `appendonly.aof.3.incr.aof`.
pub fn incr_name(appendfilename: &str, seq: u64) -> String {
    format!("{appendfilename}.{seq}.incr.aof")
}

impl Manifest {
    /// Parses a manifest (ours or Redis 7's).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                if let Some(v) = line.strip_prefix("# ferrodis-aof-manifest ") {
                    if v.trim()
                        .parse::<u32>()
                        .map_or(true, |v| v > MANIFEST_VERSION)
                    {
                        return Err(format!("unsupported manifest version '{}'", v.trim()));
                    }
                }
                continue;
            }
            let e = parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            match e.kind {
                'b' if m.base.is_some() => return Err("more than one base file".into()),
                'b' => m.base = Some(e),
                'i' => {
                    if m.incrs.last().is_some_and(|l| l.seq >= e.seq) {
                        return Err(format!("line {}: incr file seq not increasing", n + 1));
                    }
                    m.incrs.push(e)
                }
                'h' => {}
                k => return Err(format!("line {}: unknown file type '{k}'", n + 1)),
            }
        }
        Ok(m)
    }

    /// The manifest text, with our version line first.
    pub fn render(&self) -> String {
        let mut s = format!("# ferrodis-aof-manifest {MANIFEST_VERSION}\n");
        for e in self.base.iter().chain(&self.incrs) {
            s.push_str(&format!("file {} seq {} type {}\n", e.name, e.seq, e.kind));
        }
        s
    }

    /// Sequence number for a new incremental file.
    pub fn next_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(1, |e| e.seq + 1)
    }
}

fn parse_line(line: &str) -> Result<FileEntry, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() % 2 != 0 {
        return Err("odd number of words".into());
    }
    let (mut name, mut seq, mut kind) = (None, None, None);
    for kv in words.chunks(2) {
        match kv[0] {
            "file" => name = Some(kv[1].to_string()),
            "seq" => seq = kv[1].parse::<u64>().ok(),
            "type" if kv[1].len() == 1 => kind = kv[1].chars().next(),
            _ => {}
        }
    }
    let name = name.ok_or("no file name")?;
    if name.contains('/') {
        return Err(format!("file name '{name}' is a path"));
    }
    Ok(FileEntry {
        name,
        seq: seq.ok_or("no valid seq")?,
        kind: kind.ok_or("no valid type")?,
    })
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
        assert!(Manifest::parse("file ../x seq 1 type i\n").is_err());
    }
}
