//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`) through the same property the
//! fuzz target checks, so the corpus (including crash inputs added to it) is a regression suite
//! under plain `cargo test` on stable, without cargo-fuzz or nightly.
//!
//! A parser bug may loop while allocating (one did: a NUL byte in an inline request), so each
//! check runs in a child process (this test binary, running the `#[ignore]`d inner test) under
//! a 2 GB address-space limit and a time limit, and its failure is reported instead of taking
//! the machine down.

#[path = "../fuzz/check/resp_decode.rs"]
mod resp_decode;
#[path = "../fuzz/check/snapshot_load.rs"]
mod snapshot_load;
#[path = "../fuzz/check/aof_load.rs"]
mod aof_load;
#[path = "../fuzz/check/rdb_load.rs"]
mod rdb_load;
#[path = "../fuzz/check/commands.rs"]
mod commands;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

/// Shell line running `$0` (this binary) for the one ignored test `$1`, with a 2 GB address
/// space.
const GUARDED: &str =
    "ulimit -v 2000000 && exec \"$0\" --exact \"$1\" --ignored --nocapture --test-threads 1";

/// Runs the ignored test `inner` in a child process with memory and time limits.
fn run_guarded(inner: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(GUARDED)
        .arg(&exe)
        .arg(inner)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the guarded child test");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().map(|o| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let out = out.unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => {
            panic!("{inner} failed ({s}); a parser loop shows as an allocation failure:\n{out}")
        }
        None => panic!("{inner} did not finish within 300 s (parser loop?):\n{out}"),
    }
}

#[test]
fn resp_decode_corpus() {
    run_guarded("inner_resp_decode_corpus");
}

#[test]
fn resp_decode_corpus_mutations() {
    run_guarded("inner_resp_decode_corpus_mutations");
}

#[test]
#[ignore = "run through resp_decode_corpus, under limits"]
fn inner_resp_decode_corpus() {
    let files = corpus("resp_decode");
    assert!(
        files.len() >= 12,
        "the seed corpus has at least a dozen files"
    );
    for (name, data) in files {
        eprintln!("checking {name}");
        resp_decode::check(&data);
    }
}

/// The property also holds for simple mutations of the corpus: every truncation, and every
/// single-byte change into a few bytes that matter to RESP.
#[test]
#[ignore = "run through resp_decode_corpus_mutations, under limits"]
fn inner_resp_decode_corpus_mutations() {
    for (name, data) in corpus("resp_decode") {
        eprintln!("mutating {name}");
        for cut in 0..data.len() {
            resp_decode::check(&data[..cut]);
        }
        for i in 0..data.len() {
            for b in [b'\r', b'\n', b'*', b'$', b'"', b'0', b'-', 0] {
                let mut d = data.clone();
                d[i] = b;
                resp_decode::check(&d);
            }
        }
    }
}

#[test]
fn snapshot_load_corpus() {
    run_guarded("inner_snapshot_load_corpus");
}

#[test]
fn snapshot_load_corpus_mutations() {
    run_guarded("inner_snapshot_load_corpus_mutations");
}

#[test]
#[ignore = "run through snapshot_load_corpus, under limits"]
fn inner_snapshot_load_corpus() {
    let files = corpus("snapshot_load");
    assert!(files.len() >= 10, "the seed corpus has at least ten files");
    for (name, data) in files {
        eprintln!("checking {name}");
        snapshot_load::check(&data);
    }
}

/// The property also holds for simple mutations of the corpus: truncations and single-byte
/// changes into a few bytes that matter to the format (varint continuation, maximal and zero
/// bytes, item types), at every position of a small file and at about 256 spread positions of
/// a larger one (each load of those decompresses a quarter megabyte).
#[test]
#[ignore = "run through snapshot_load_corpus_mutations, under limits"]
fn inner_snapshot_load_corpus_mutations() {
    for (name, data) in corpus("snapshot_load") {
        eprintln!("mutating {name}");
        let step = (data.len() / 256).max(1);
        for cut in (0..data.len()).step_by(step) {
            snapshot_load::check(&data[..cut]);
        }
        for i in (0..data.len()).step_by(step) {
            for b in [0, 1, 0x7f, 0x80, 0xff, b'B', b'E'] {
                let mut d = data.clone();
                d[i] = b;
                snapshot_load::check(&d);
            }
        }
    }
}

#[test]
fn aof_load_corpus() {
    run_guarded("inner_aof_load_corpus");
}

#[test]
fn aof_load_corpus_mutations() {
    run_guarded("inner_aof_load_corpus_mutations");
}

#[test]
#[ignore = "run through aof_load_corpus, under limits"]
fn inner_aof_load_corpus() {
    let files = corpus("aof_load");
    assert!(files.len() >= 12, "the seed corpus has at least a dozen files");
    for (name, data) in files {
        eprintln!("checking {name}");
        aof_load::check(&data);
        aof_load::check_prefixes(&data);
    }
}

/// The property also holds for simple mutations of the corpus: every truncation, and every
/// single-byte change into a few bytes that matter to the framing and to RESP.
#[test]
#[ignore = "run through aof_load_corpus_mutations, under limits"]
fn inner_aof_load_corpus_mutations() {
    for (name, data) in corpus("aof_load") {
        eprintln!("mutating {name}");
        // Whole-file reads only here: the split reads of `check` run on the corpus itself.
        for cut in 0..data.len() {
            aof_load::check_whole(&data[..cut]);
        }
        for i in 0..data.len() {
            for b in [b'\r', b'\n', b'*', b'$', b'#', b'F', b'0', b'9', 0xff] {
                let mut d = data.clone();
                d[i] = b;
                aof_load::check_whole(&d);
            }
        }
    }
}

#[test]
fn rdb_load_corpus() {
    run_guarded("inner_rdb_load_corpus");
}

#[test]
fn rdb_load_corpus_mutations() {
    run_guarded("inner_rdb_load_corpus_mutations");
}

/// The seeds themselves (written by redis-server 7.0, see `write_fuzz_seeds` in
/// `tests/rdb_import.rs`) are valid: each `file-` seed loads and each `obj-` seed decodes, so
/// the fuzzer starts from inputs that reach every decoder.
#[test]
#[ignore = "run through rdb_load_corpus, under limits"]
fn inner_rdb_load_corpus() {
    use ferrodis::snapshot::{codec::EncodingLimits, rdb};
    let files = corpus("rdb_load");
    assert!(files.len() >= 12, "the seed corpus has at least a dozen files");
    for (name, data) in files {
        eprintln!("checking {name}");
        let base = name.rsplit('/').next().unwrap_or_default();
        let lim = EncodingLimits::default();
        if base.starts_with("file-") {
            let mut sink = snapshot_load::Counter::default();
            rdb::load(&data, lim, &mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if base.starts_with("obj-") {
            rdb::dump_object(&data, &lim).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        rdb_load::check(&data);
    }
}

/// The property also holds for simple mutations of the corpus: every truncation, and every
/// single-byte change into bytes that matter to RDB (length encodings: 6-bit, 14-bit, 32-bit,
/// special; type and opcode bytes; listpack and ziplist terminators).
#[test]
#[ignore = "run through rdb_load_corpus_mutations, under limits"]
fn inner_rdb_load_corpus_mutations() {
    for (name, data) in corpus("rdb_load") {
        eprintln!("mutating {name}");
        for cut in 0..data.len() {
            rdb_load::check(&data[..cut]);
        }
        for i in 0..data.len() {
            for b in [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xc3, 0xfe, 0xff] {
                let mut d = data.clone();
                d[i] = b;
                rdb_load::check(&d);
            }
        }
    }
}

#[test]
fn commands_corpus() {
    run_guarded("inner_commands_corpus");
}

/// The corpus, then pseudo-random pipelines from a fixed seed (each a fresh server): a quick
/// sweep of every command with arbitrary arguments on every run.
#[test]
#[ignore = "run through commands_corpus, under limits"]
fn inner_commands_corpus() {
    let files = corpus("commands");
    assert!(files.len() >= 8, "the seed corpus has at least eight files");
    for (name, data) in files {
        eprintln!("checking {name}");
        commands::check(&data);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..1000 {
        let data: Vec<u8> = (0..64 + round % 256)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        commands::check(&data);
    }
}
