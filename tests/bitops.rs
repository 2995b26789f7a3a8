//! Black-box tests for the bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO) over TCP.

mod common;

use common::{q, err, TestServer};
use redis::Connection;

fn set_bytes(c: &mut Connection, key: &str, v: &[u8]) {
    redis::cmd("SET").arg(key).arg(v).query::<()>(c).unwrap();
}

#[test]
fn setbit_and_getbit() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    assert_eq!(q::<i64>(&mut c, &["SETBIT", "b", "7", "1"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SETBIT", "b", "7", "1"]), 1);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "b"]), b"\x01");
    assert_eq!(q::<i64>(&mut c, &["SETBIT", "b", "9", "1"]), 0);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "b"]), b"\x01\x40");
    assert_eq!(q::<i64>(&mut c, &["GETBIT", "b", "9"]), 1);
    assert_eq!(q::<i64>(&mut c, &["GETBIT", "b", "1000"]), 0);
    assert_eq!(q::<i64>(&mut c, &["GETBIT", "nokey", "0"]), 0);
    let bad_bit = "ERR bit is not an integer or out of range";
    assert_eq!(err(&mut c, &["SETBIT", "b", "0", "2"]), bad_bit);
    assert_eq!(err(&mut c, &["SETBIT", "b", "0", "x"]), bad_bit);
    let bad_off = "ERR bit offset is not an integer or out of range";
    assert_eq!(err(&mut c, &["SETBIT", "b", "-1", "1"]), bad_off);
    assert_eq!(err(&mut c, &["SETBIT", "b", "4294967296", "1"]), bad_off);
    assert_eq!(err(&mut c, &["GETBIT", "b", "abc"]), bad_off);
    // Integer-encoded strings are bitmaps of their decimal text.
    q::<()>(&mut c, &["SET", "n", "1"]);
    assert_eq!(q::<i64>(&mut c, &["SETBIT", "n", "6", "1"]), 0);
    assert_eq!(q::<String>(&mut c, &["GET", "n"]), "3");
}

#[test]
fn bitcount_ranges() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    q::<()>(&mut c, &["SET", "s", "foobar"]);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s"]), 26);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "0", "0"]), 4);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "1", "1", "BYTE"]), 6);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "5", "30", "BIT"]), 17);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "-2", "-1"]), 7);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "2", "1"]), 0);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "s", "-1", "-2", "FOO"]), 0);
    assert_eq!(q::<i64>(&mut c, &["BITCOUNT", "nokey", "a", "b"]), 0);
    assert_eq!(err(&mut c, &["BITCOUNT", "s", "0"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["BITCOUNT", "s", "0", "1", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["BITCOUNT", "s", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn bitpos_semantics() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    set_bytes(&mut c, "p", b"\xff\xf0\x00");
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "p", "0"]), 12);
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "p", "1", "2"]), -1);
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "p", "1", "7", "15", "BIT"]), 7);
    assert_eq!(
        q::<i64>(&mut c, &["BITPOS", "p", "0", "0", "11", "BIT"]),
        -1
    );
    set_bytes(&mut c, "ones", b"\xff\xff");
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "ones", "0"]), 16);
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "ones", "0", "0", "-1"]), -1);
    assert_eq!(
        q::<i64>(&mut c, &["BITPOS", "ones", "0", "3", "-1", "BIT"]),
        -1
    );
    assert_eq!(
        err(&mut c, &["BITPOS", "ones", "0", "3", "BIT"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "nokey", "0"]), 0);
    assert_eq!(q::<i64>(&mut c, &["BITPOS", "nokey", "1"]), -1);
    assert_eq!(
        err(&mut c, &["BITPOS", "p", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(
        err(&mut c, &["BITPOS", "p", "0", "0", "0", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["BITPOS", "p", "0", "0", "0", "BIT", "x"]),
        "ERR syntax error"
    );
}

#[test]
fn bitop_operations() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    set_bytes(&mut c, "a", b"\xff\x0f");
    set_bytes(&mut c, "b", b"\x0f");
    assert_eq!(q::<i64>(&mut c, &["BITOP", "AND", "d", "a", "b"]), 2);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "d"]), b"\x0f\x00");
    assert_eq!(
        q::<i64>(&mut c, &["BITOP", "or", "d", "a", "b", "nokey"]),
        2
    );
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "d"]), b"\xff\x0f");
    assert_eq!(q::<i64>(&mut c, &["BITOP", "XOR", "d", "a", "b"]), 2);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "d"]), b"\xf0\x0f");
    assert_eq!(q::<i64>(&mut c, &["BITOP", "NOT", "d", "b"]), 1);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "d"]), b"\xf0");
    assert_eq!(q::<i64>(&mut c, &["BITOP", "AND", "d", "x", "y"]), 0);
    assert_eq!(q::<Option<Vec<u8>>>(&mut c, &["GET", "d"]), None);
    assert_eq!(
        err(&mut c, &["BITOP", "NOT", "d", "a", "b"]),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(
        err(&mut c, &["BITOP", "NAND", "d", "a"]),
        "ERR syntax error"
    );
}

#[test]
fn bitfield_get_set_incrby_overflow() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let r: Vec<i64> = q(
        &mut c,
        &["BITFIELD", "bf", "SET", "i8", "0", "-100", "GET", "u8", "0"],
    );
    assert_eq!(r, vec![0, 156]);
    let r: Vec<i64> = q(&mut c, &["BITFIELD", "bf", "INCRBY", "i8", "0", "200"]);
    assert_eq!(r, vec![100]);
    let r: Vec<i64> = q(
        &mut c,
        &[
            "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "200",
        ],
    );
    assert_eq!(r, vec![127]);
    let r: Vec<Option<i64>> = q(
        &mut c,
        &[
            "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "1", "GET", "i8", "0",
        ],
    );
    assert_eq!(r, vec![None, Some(127)]);
    let r: Vec<i64> = q(
        &mut c,
        &["BITFIELD", "bf", "SET", "u8", "#1", "-1", "GET", "u8", "8"],
    );
    assert_eq!(r, vec![0, 255]);
    let r: Vec<i64> = q(
        &mut c,
        &[
            "BITFIELD",
            "bf",
            "SET",
            "i64",
            "0",
            "-9223372036854775808",
            "INCRBY",
            "i64",
            "0",
            "-1",
        ],
    );
    assert_eq!(r, vec![9223090561878065152, 9223372036854775807]);
    let r: Vec<i64> = q(&mut c, &["BITFIELD", "bf", "GET", "u63", "0"]);
    assert_eq!(r, vec![4611686018427387903]);
    let r: Vec<i64> = q(&mut c, &["BITFIELD", "nokey", "GET", "u8", "0"]);
    assert_eq!(r, vec![0]);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "nokey"]), None);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["BITFIELD", "bf"]),
        Vec::<i64>::new()
    );
}

#[test]
fn bitfield_errors_and_ro() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    let bad_type = "ERR Invalid bitfield type. Use something like i16 u8. \
                    Note that u64 is not supported but i64 is.";
    assert_eq!(err(&mut c, &["BITFIELD", "k", "GET", "u64", "0"]), bad_type);
    assert_eq!(err(&mut c, &["BITFIELD", "k", "GET", "i65", "0"]), bad_type);
    assert_eq!(err(&mut c, &["BITFIELD", "k", "GET", "x8", "0"]), bad_type);
    let bad_off = "ERR bit offset is not an integer or out of range";
    assert_eq!(err(&mut c, &["BITFIELD", "k", "GET", "u8", "-1"]), bad_off);
    assert_eq!(err(&mut c, &["BITFIELD", "k", "GET", "u8", "#a"]), bad_off);
    assert_eq!(
        err(&mut c, &["BITFIELD", "k", "GET", "u16", "#268435456"]),
        bad_off
    );
    assert_eq!(
        err(&mut c, &["BITFIELD", "k", "OVERFLOW", "foo"]),
        "ERR Invalid OVERFLOW type specified"
    );
    assert_eq!(err(&mut c, &["BITFIELD", "k", "FOO"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["BITFIELD", "k", "SET", "u8", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["BITFIELD", "k", "SET", "u8", "0", "x"]),
        "ERR value is not an integer or out of range"
    );
    q::<()>(&mut c, &["SET", "k", "\x7f"]);
    let r: Vec<i64> = q(
        &mut c,
        &["BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i4", "4"],
    );
    assert_eq!(r, vec![127, -1]);
    assert_eq!(
        err(&mut c, &["BITFIELD_RO", "k", "SET", "u8", "0", "1"]),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
}
