//! The seed workloads through real Python clients: `tests/python/test_seeds.py` runs redis-py
//! and django-redis (pipelines, MULTI/EXEC, WATCH, pub/sub, keyspace events, `Lock`, sessions
//! with TTL) against a spawned ferrodis.
//!
//! Without Python's `redis`, `django` and `django_redis` modules the test prints a skip notice
//! and passes, unless `FERRODIS_REQUIRE_PYTHON=1` (CI, whose `.ci/run` installs them) makes
//! that a failure. By hand: `pip install redis django django-redis`, then `cargo test --test
//! python_clients`.

mod common;

use std::process::Command;

use common::TestServer;

fn python_clients_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import redis, django, django_redis"])
        .output();
    if matches!(&probe, Ok(o) if o.status.success()) {
        return true;
    }
    if std::env::var("FERRODIS_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("python3 with redis, django and django-redis is required (FERRODIS_REQUIRE_PYTHON=1)");
    }
    eprintln!("SKIPPED python_clients: pip install redis django django-redis to run it");
    false
}

#[test]
fn seed_workloads_through_redis_py_and_django_redis() {
    if !python_clients_available() {
        return;
    }
    let server = TestServer::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/test_seeds.py");
    let out = Command::new("python3")
        .arg(script)
        .env("FERRODIS_PORT", server.port.to_string())
        .output()
        .expect("run python3");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-py seed workloads failed:\n{log}");
    assert!(log.contains("OK"), "unexpected unittest output:\n{log}");
}
