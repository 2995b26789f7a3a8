//! `ferrodis-check-aof [--fix] PATH`: verifies an append-only file, or an append-only
//! directory (or its manifest), and reports the offset up to which each file is whole.
//! With `--fix`, truncates the damaged file at that offset (no question asked).
//!
//! Exit codes, like `redis-check-aof`: 0 when the log is valid (or was fixed), 1 when it is
//! damaged and was not fixed, or on a usage or I/O error.
#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferrodis::aof::format::check;
use ferrodis::aof::load::is_rdb;
use ferrodis::aof::manifest::Manifest;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (fix, path) = match args.as_slice() {
        [p] if p != "--fix" => (false, PathBuf::from(p)),
        [f, p] if f == "--fix" => (true, PathBuf::from(p)),
        _ => {
            eprintln!("Usage: ferrodis-check-aof [--fix] <file.aof|file.manifest|appendonlydir>");
            return ExitCode::from(1);
        }
    };
    match run(&path, fix) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The files to check, in log order.
fn files_of(path: &Path) -> Result<Vec<PathBuf>, String> {
    let manifest = if path.is_dir() {
        let found = std::fs::read_dir(path)
            .map_err(|e| format!("can't read {}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "manifest"));
        found.ok_or_else(|| format!("no manifest in {}", path.display()))?
    } else if path.extension().is_some_and(|x| x == "manifest") {
        path.to_path_buf()
    } else {
        return Ok(vec![path.to_path_buf()]);
    };
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("can't read {}: {e}", manifest.display()))?;
    let m = Manifest::parse(&text).map_err(|e| format!("invalid manifest: {e}"))?;
    println!("Start checking Multi Part AOF");
    Ok(m.base
        .iter()
        .chain(&m.incrs)
        .map(|f| dir.join(&f.name))
        .collect())
}

/// Checks every file; returns whether the log is valid at the end.
fn run(path: &Path, fix: bool) -> Result<bool, String> {
    let files = files_of(path)?;
    let mut ok = true;
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        ok &= check_file(f, last, fix)?;
    }
    if ok {
        println!("All AOF files are valid");
    }
    Ok(ok)
}

/// Counts what a snapshot base holds while the loader verifies it.
#[derive(Default)]
struct BaseCount {
    keys: u64,
}

impl ferrodis::snapshot::file::LoadSink for BaseCount {
    fn meta(&mut self, _meta: &ferrodis::snapshot::file::Meta) -> Result<(), String> {
        Ok(())
    }

    fn value(&mut self, _db: u32, _key: &[u8], _v: ferrodis::keyspace::Value) -> Result<(), String> {
        self.keys += 1;
        Ok(())
    }

    fn expire(&mut self, _db: u32, _key: &[u8], _at_ms: u64) -> Result<(), String> {
        Ok(())
    }
}

/// A base written by a rewrite is a ferrodis snapshot: every block checksum, the file checksum
/// and every record are verified (`--fix` cannot repair it: a damaged base is refused).
fn check_snapshot_base(path: &Path) -> Result<bool, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("can't open {name}: {e}"))?;
    let mut count = BaseCount::default();
    let limits = ferrodis::snapshot::codec::EncodingLimits::default();
    match ferrodis::snapshot::file::load(&bytes, limits, &mut count) {
        Ok(_) => {
            println!("Snapshot base {name} is valid ({} keys)", count.keys);
            Ok(true)
        }
        Err(e) => {
            println!("Snapshot base {name} is not valid: {e}");
            Ok(false)
        }
    }
}

fn check_file(path: &Path, last: bool, fix: bool) -> Result<bool, String> {
    let name = path.display();
    if ferrodis::aof::rewrite::is_snapshot(path) {
        return check_snapshot_base(path);
    }
    if is_rdb(path).map_err(|e| format!("can't open {name}: {e}"))? {
        println!("{name} is an RDB base: not checked (RDB checking is not supported yet)");
        return Ok(true);
    }
    let file = std::fs::File::open(path).map_err(|e| format!("can't open {name}: {e}"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let v = check(file).map_err(|e| format!("can't read {name}: {e}"))?;
    println!(
        "AOF analyzed: filename={name}, size={size}, ok_up_to={}, commands={}, frames={}, diff={}",
        v.valid,
        v.commands,
        v.frames,
        size - v.valid.min(size)
    );
    let Some((offset, reason, torn)) = v.damage else {
        println!("AOF {name} is valid");
        return Ok(true);
    };
    let what = if torn {
        "truncated (torn tail)"
    } else {
        "corrupted"
    };
    println!("AOF {name} is {what} at offset {offset}: {reason}");
    if !fix {
        println!("AOF {name} is not valid. Use the --fix option to try fixing it.");
        return Ok(false);
    }
    if !last {
        println!("AOF {name} is not the last file: it can't be fixed by truncation.");
        return Ok(false);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.set_len(v.valid)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("failed to truncate: {e}"))?;
    println!(
        "Successfully truncated AOF {name} to {} bytes ({} bytes removed)",
        v.valid,
        size - v.valid
    );
    Ok(true)
}
