//! The wire protocol end to end: pipelining, inline commands, requests split at every byte,
//! and malformed input that Redis answers with an error before closing the connection.

mod common;

use std::time::Duration;

use common::TestServer;

fn s(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn pipelined_and_inline_requests() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    r.send(b"*1\r\n$4\r\nPING\r\nECHO \"a b\"\r\n\r\n*0\r\nPING x\n");
    assert_eq!(
        s(r.read_some(Duration::from_millis(200))),
        "+PONG\r\n$3\r\na b\r\n$1\r\nx\r\n"
    );
}

#[test]
fn request_split_at_every_byte() {
    let srv = TestServer::start(&[]);
    let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for split in 1..req.len() {
        let mut r = srv.raw();
        r.send(&req[..split]);
        std::thread::sleep(Duration::from_millis(2));
        r.send(&req[split..]);
        assert_eq!(
            s(r.read_exact_n(5 + 11)),
            "+OK\r\n$5\r\nhello\r\n",
            "split at {split}"
        );
    }
}

fn closes_with(input: &[u8], msg: &str) {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    r.send(input);
    assert_eq!(
        s(r.read_some(Duration::from_millis(300))),
        msg,
        "{:?}",
        input
    );
}

#[test]
fn malformed_requests_close_with_redis_errors() {
    closes_with(
        b"*1\r\n$-5\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    closes_with(
        b"*3000000000\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    closes_with(
        b"*1\r\nfoo\r\n",
        "-ERR Protocol error: expected '$', got 'f'\r\n",
    );
    closes_with(
        b"SET \"a\r\n",
        "-ERR Protocol error: unbalanced quotes in request\r\n",
    );
    let mut big = b"*1\r\n$".to_vec();
    big.extend(std::iter::repeat(b'1').take(70 * 1024));
    closes_with(&big, "-ERR Protocol error: too big bulk count string\r\n");
    let big = vec![b'a'; 70 * 1024];
    closes_with(&big, "-ERR Protocol error: too big inline request\r\n");
}

#[test]
fn pipelined_commands_before_an_error_are_answered() {
    closes_with(
        b"PING\r\n*1\r\n$x\r\n",
        "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
    );
}
