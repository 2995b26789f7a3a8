//! Black-box tests for the geo commands (GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS and
//! GEORADIUSBYMEMBER with their _RO forms, GEOSEARCH, GEOSEARCHSTORE) over TCP. The expected
//! values are what redis-server 7.0.15 answers.

mod common;

use common::{err, q, RawConn, TestServer};
use redis::Connection;

fn sicily(c: &mut Connection) {
    let added: i64 = q(
        c,
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
            "13.583333",
            "37.316667",
            "Agrigento",
        ],
    );
    assert_eq!(added, 3);
}

fn s(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap()
}

#[test]
fn geoadd_stores_geohash_scores_in_a_zset() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    sicily(&mut c);
    assert_eq!(q::<String>(&mut c, &["TYPE", "Sicily"]), "zset");
    assert_eq!(
        q::<String>(&mut c, &["ZSCORE", "Sicily", "Palermo"]),
        "3479099956230698"
    );
    assert_eq!(
        q::<String>(&mut c, &["ZSCORE", "Sicily", "Catania"]),
        "3479447370796909"
    );
    // Options are ZADD's.
    let ch = [
        "GEOADD",
        "Sicily",
        "CH",
        "13.361389",
        "38.115556",
        "Palermo",
        "1",
        "1",
        "x",
    ];
    assert_eq!(q::<i64>(&mut c, &ch), 1);
    let xx = [
        "GEOADD", "Sicily", "XX", "CH", "2", "2", "Palermo", "3", "3", "y",
    ];
    assert_eq!(q::<i64>(&mut c, &xx), 1);
    assert_eq!(
        q::<Option<String>>(&mut c, &["ZSCORE", "Sicily", "y"]),
        None
    );
    let nx = ["GEOADD", "Sicily", "NX", "4", "4", "Palermo", "5", "5", "z"];
    assert_eq!(q::<i64>(&mut c, &nx), 1);
    assert_eq!(
        err(&mut c, &["GEOADD", "Sicily", "NX", "XX", "1", "1", "a"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "Sicily", "1", "1", "a", "2"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "Sicily", "200", "0", "a"]),
        "ERR invalid longitude,latitude pair 200.000000,0.000000"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "Sicily", "0", "85.06", "a"]),
        "ERR invalid longitude,latitude pair 0.000000,85.060000"
    );
    assert_eq!(
        err(&mut c, &["GEOADD", "Sicily", "x", "0", "a"]),
        "ERR value is not a valid float"
    );
    // A bad pair anywhere adds nothing.
    assert_eq!(
        err(&mut c, &["GEOADD", "new", "1", "1", "a", "0", "90", "b"]),
        "ERR invalid longitude,latitude pair 0.000000,90.000000"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "new"]), 0);
}

#[test]
fn geopos_geohash_geodist() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    sicily(&mut c);
    let pos: Vec<Option<Vec<String>>> = q(&mut c, &["GEOPOS", "Sicily", "Palermo", "nope"]);
    assert_eq!(
        pos,
        vec![
            Some(vec![
                "13.36138933897018433".into(),
                "38.11555639549629859".into()
            ]),
            None
        ]
    );
    let hashes: Vec<Option<String>> = q(&mut c, &["GEOHASH", "Sicily", "Palermo", "Catania", "x"]);
    assert_eq!(
        hashes,
        vec![Some("sqc8b49rny0".into()), Some("sqdtr74hyu0".into()), None]
    );
    let d = |c: &mut Connection, args: &[&str]| q::<Option<String>>(c, args);
    assert_eq!(
        d(&mut c, &["GEODIST", "Sicily", "Palermo", "Catania"]),
        Some("166274.1516".into())
    );
    assert_eq!(
        d(&mut c, &["GEODIST", "Sicily", "Palermo", "Catania", "km"]),
        Some("166.2742".into())
    );
    assert_eq!(
        d(&mut c, &["GEODIST", "Sicily", "Palermo", "Catania", "MI"]),
        Some("103.3182".into())
    );
    assert_eq!(
        d(&mut c, &["GEODIST", "Sicily", "Palermo", "Palermo"]),
        Some("0.0000".into())
    );
    assert_eq!(d(&mut c, &["GEODIST", "Sicily", "Palermo", "nope"]), None);
    assert_eq!(d(&mut c, &["GEODIST", "nokey", "a", "b"]), None);
    assert_eq!(
        err(&mut c, &["GEODIST", "Sicily", "Palermo", "Catania", "yd"]),
        "ERR unsupported unit provided. please use M, KM, FT, MI"
    );
    assert_eq!(
        err(
            &mut c,
            &["GEODIST", "Sicily", "Palermo", "Catania", "km", "x"]
        ),
        "ERR syntax error"
    );
    q::<()>(&mut c, &["SET", "str", "x"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(err(&mut c, &["GEOPOS", "str", "a"]), wrongtype);
    assert_eq!(err(&mut c, &["GEOHASH", "str", "a"]), wrongtype);
    assert_eq!(err(&mut c, &["GEODIST", "str", "a", "b"]), wrongtype);
    assert_eq!(err(&mut c, &["GEOADD", "str", "1", "1", "a"]), wrongtype);
    assert_eq!(
        err(
            &mut c,
            &["GEOSEARCH", "str", "FROMMEMBER", "a", "BYRADIUS", "1", "m"]
        ),
        wrongtype
    );
}

#[test]
fn radius_searches_sort_count_and_options() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    sicily(&mut c);
    let names = |c: &mut Connection, args: &[&str]| q::<Vec<String>>(c, args);
    assert_eq!(
        names(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "ASC"]
        ),
        ["Catania", "Agrigento", "Palermo"]
    );
    assert_eq!(
        names(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "DESC"]
        ),
        ["Palermo", "Agrigento", "Catania"]
    );
    assert_eq!(
        names(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "COUNT", "1"]
        ),
        ["Catania"]
    );
    assert_eq!(
        names(
            &mut c,
            &["GEORADIUSBYMEMBER_RO", "Sicily", "Agrigento", "100", "km"]
        ),
        ["Agrigento", "Palermo"]
    );
    let with: Vec<(String, String, i64, (String, String))> = q(
        &mut c,
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "100",
            "km",
            "WITHDIST",
            "WITHHASH",
            "WITHCOORD",
        ],
    );
    assert_eq!(
        with,
        vec![(
            "Catania".into(),
            "56.4413".into(),
            3479447370796909,
            ("15.08726745843887329".into(), "37.50266842333162032".into())
        )]
    );
    let boxed = [
        "GEOSEARCH",
        "Sicily",
        "FROMMEMBER",
        "Palermo",
        "BYBOX",
        "200",
        "200",
        "km",
    ];
    assert_eq!(names(&mut c, &boxed), ["Agrigento", "Palermo"]);
    assert_eq!(
        names(&mut c, &["GEORADIUS", "nokey", "15", "37", "200", "km"]),
        Vec::<String>::new()
    );
    let e = |c: &mut Connection, args: &[&str]| err(c, args);
    assert_eq!(
        e(&mut c, &["GEORADIUS", "Sicily", "15", "37", "-1", "km"]),
        "ERR radius cannot be negative"
    );
    assert_eq!(
        e(&mut c, &["GEORADIUS", "Sicily", "15", "37", "x", "km"]),
        "ERR need numeric radius"
    );
    assert_eq!(
        e(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "COUNT", "0"]
        ),
        "ERR COUNT must be > 0"
    );
    assert_eq!(
        e(
            &mut c,
            &["GEORADIUS", "Sicily", "15", "37", "1", "km", "ANY"]
        ),
        "ERR the ANY argument requires COUNT argument"
    );
    assert_eq!(
        e(
            &mut c,
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "1",
                "km",
                "STORE",
                "d",
                "WITHDIST"
            ]
        ),
        "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD \
         options"
    );
    assert_eq!(
        e(
            &mut c,
            &[
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "1",
                "km",
                "STORE",
                "d"
            ]
        ),
        "ERR syntax error"
    );
    assert_eq!(
        e(&mut c, &["GEORADIUSBYMEMBER", "Sicily", "nope", "1", "km"]),
        "ERR could not decode requested zset member"
    );
    assert_eq!(
        e(
            &mut c,
            &[
                "GEOSEARCH",
                "Sicily",
                "BYRADIUS",
                "1",
                "km",
                "ASC",
                "WITHDIST"
            ]
        ),
        "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"
    );
    assert_eq!(
        e(
            &mut c,
            &[
                "geosearch",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "WITHDIST",
                "ASC"
            ]
        ),
        "ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch"
    );
    assert_eq!(
        e(
            &mut c,
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYBOX",
                "1",
                "-1",
                "m"
            ]
        ),
        "ERR height or width cannot be negative"
    );
}

#[test]
fn store_variants_write_or_delete_the_destination() {
    let srv = TestServer::start(&[]);
    let mut c = srv.conn();
    sicily(&mut c);
    let store = [
        "GEORADIUS",
        "Sicily",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "dst",
    ];
    assert_eq!(q::<i64>(&mut c, &store), 3);
    let z: Vec<(String, String)> = q(&mut c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
    assert_eq!(z[0], ("Agrigento".into(), "3479030013248308".into()));
    let storedist = [
        "GEOSEARCHSTORE",
        "dst",
        "Sicily",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "100",
        "km",
        "STOREDIST",
    ];
    assert_eq!(q::<i64>(&mut c, &storedist), 1);
    let z: Vec<(String, String)> = q(&mut c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
    assert_eq!(z, vec![("Catania".into(), "56.441257870158204".into())]);
    // Nothing found (or no source) deletes the destination.
    let none = [
        "GEOSEARCHSTORE",
        "dst",
        "Sicily",
        "FROMLONLAT",
        "0",
        "0",
        "BYRADIUS",
        "1",
        "m",
    ];
    assert_eq!(q::<i64>(&mut c, &none), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    q::<()>(&mut c, &["SET", "dst", "x"]);
    let nosrc = ["GEORADIUS", "nokey", "0", "0", "1", "m", "STOREDIST", "dst"];
    assert_eq!(q::<i64>(&mut c, &nosrc), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(
        err(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "BYRADIUS",
                "1",
                "km",
                "WITHCOORD"
            ]
        ),
        "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
    );
}

#[test]
fn resp3_coordinates_are_doubles() {
    let srv = TestServer::start(&[]);
    let mut r: RawConn = srv.raw();
    r.cmd(&["HELLO", "3"]);
    r.cmd(&["GEOADD", "k", "13.361389", "38.115556", "Palermo"]);
    assert_eq!(
        s(r.cmd(&["GEOPOS", "k", "Palermo", "x"])),
        "*2\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n"
    );
    assert_eq!(s(r.cmd(&["GEOHASH", "k", "x"])), "*1\r\n_\r\n");
    assert_eq!(
        s(r.cmd(&["GEODIST", "k", "Palermo", "Palermo"])),
        "$6\r\n0.0000\r\n"
    );
    assert_eq!(
        s(r.cmd(&[
            "GEOSEARCH",
            "k",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "1",
            "m",
            "WITHDIST"
        ])),
        "*1\r\n*2\r\n$7\r\nPalermo\r\n$6\r\n0.0000\r\n"
    );
}

/// A connection attached as a replica (SYNC), past its snapshot: it then reads the stream.
fn attach_sync(srv: &TestServer) -> RawConn {
    let mut r = srv.raw();
    r.send(b"SYNC\r\n");
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = r.read_exact_n(1)[0];
        if !(line.is_empty() && b == b'\n') {
            line.push(b);
        }
    }
    let len: usize = std::str::from_utf8(&line[1..line.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    r.read_exact_n(len);
    r
}

#[test]
fn geoadd_propagates_as_zadd_and_stores_verbatim() {
    let srv = TestServer::start(&["--repl-diskless-sync-delay", "0"]);
    let mut c = srv.raw();
    c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    let mut r = attach_sync(&srv);
    c.cmd(&["GEOADD", "g", "CH", "13.361389", "38.115556", "Palermo"]);
    // Nothing changes: nothing propagates.
    c.cmd(&["GEOADD", "g", "NX", "1", "1", "Palermo"]);
    c.cmd(&["GEORADIUS", "g", "13", "38", "100", "km"]);
    c.cmd(&["GEORADIUS", "g", "13", "38", "100", "km", "STORE", "d"]);
    let expected = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n\
        *5\r\n$4\r\nzadd\r\n$1\r\ng\r\n$2\r\nCH\r\n$16\r\n3479099956230698\r\n$7\r\nPalermo\r\n\
        *8\r\n$9\r\nGEORADIUS\r\n$1\r\ng\r\n$2\r\n13\r\n$2\r\n38\r\n$3\r\n100\r\n$2\r\nkm\r\n\
        $5\r\nSTORE\r\n$1\r\nd\r\n";
    assert_eq!(s(r.read_exact_n(expected.len())), expected);
}
