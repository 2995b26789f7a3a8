//! End-to-end smoke test: the binary starts, speaks RESP, and runs basic commands.

mod common;

use common::TestServer;

#[test]
fn set_get_del_roundtrip() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let n: i64 = redis::cmd("DEL").arg("k").arg("nokey").query(&mut c).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn unknown_command_uses_redis_message() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        r.cmd(&["FOO", "a", "b"]),
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n".to_vec()
    );
}
