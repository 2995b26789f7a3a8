//! Connection commands end to end: AUTH, HELLO, RESET, SELECT and the CLIENT family.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;

fn s(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn ping_echo_select_quit() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(s(r.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(s(r.cmd(&["PING", "hi"])), "$2\r\nhi\r\n");
    assert_eq!(
        s(r.cmd(&["PING", "a", "b"])),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(s(r.cmd(&["ECHO", "x"])), "$1\r\nx\r\n");
    assert_eq!(
        s(r.cmd(&["SELECT", "99"])),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        s(r.cmd(&["SELECT", "x"])),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(s(r.cmd(&["SELECT", "3"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["QUIT"])), "+OK\r\n");
    assert!(r.read_some(Duration::from_millis(200)).is_empty());
}

#[test]
fn auth_without_password_configured() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["AUTH", "x"])),
        "-ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(s(r.cmd(&["AUTH", "default", "anything"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["AUTH", "a", "b", "c"])), "-ERR syntax error\r\n");
}

/// Starts a server with `requirepass` and returns it with a raw, unauthenticated connection.
fn start_with_password() -> (TestServer, common::RawConn) {
    let srv = TestServer::start(&["--requirepass", "secret"]);
    let r = srv.raw();
    (srv, r)
}

#[test]
fn requirepass_gates_commands() {
    let (_srv, mut r) = start_with_password();
    assert_eq!(s(r.cmd(&["PING"])), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        s(r.cmd(&["AUTH", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        s(r.cmd(&["AUTH", "bob", "secret"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(s(r.cmd(&["HELLO", "3"])).starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(s(r.cmd(&["AUTH", "secret"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(s(r.cmd(&["RESET"])), "+RESET\r\n");
    assert_eq!(s(r.cmd(&["PING"])), "-NOAUTH Authentication required.\r\n");
    let hello = s(r.cmd(&["HELLO", "2", "AUTH", "default", "secret"]));
    assert!(
        hello.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert_eq!(s(r.cmd(&["PING"])), "+PONG\r\n");
    // Unauthenticated clients get Redis's tight protocol limits.
    let (_srv2, mut u) = start_with_password();
    u.send(b"*20\r\n");
    assert_eq!(
        s(u.read_some(Duration::from_millis(200))),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn hello_switches_protocol_and_reset_restores() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    let id = s(r.cmd(&["CLIENT", "ID"]));
    let hello = s(r.cmd(&["HELLO", "3"]));
    let want = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n\
         :3\r\n$2\r\nid\r\n{id}$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n"
    );
    assert_eq!(hello, want);
    assert_eq!(s(r.cmd(&["CLIENT", "GETNAME"])), "_\r\n");
    assert_eq!(
        s(r.cmd(&["HELLO", "4"])),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        s(r.cmd(&["HELLO", "x"])),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        s(r.cmd(&["HELLO", "3", "foo"])),
        "-ERR Syntax error in HELLO option 'foo'\r\n"
    );
    assert!(s(r.cmd(&["HELLO", "3", "SETNAME", "me"])).starts_with("%7\r\n"));
    assert_eq!(s(r.cmd(&["CLIENT", "GETNAME"])), "$2\r\nme\r\n");
    assert_eq!(s(r.cmd(&["SELECT", "2"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["RESET"])), "+RESET\r\n");
    assert_eq!(s(r.cmd(&["CLIENT", "GETNAME"])), "$-1\r\n");
    let info = s(r.cmd(&["CLIENT", "INFO"]));
    assert!(
        info.contains(" db=0 ") && info.contains(" resp=2\n"),
        "{info}"
    );
}

#[test]
fn client_setname_list_info() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["CLIENT", "SETNAME", "a b"])),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(s(r.cmd(&["CLIENT", "SETNAME", "conn1"])), "+OK\r\n");
    let info = s(r.cmd(&["CLIENT", "INFO"]));
    let body = info.split("\r\n").nth(1).unwrap();
    let keys: Vec<&str> = body
        .split(' ')
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys.join(" "),
        "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem \
         multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp"
    );
    assert!(
        body.contains(" name=conn1 ") && body.contains(" cmd=client|info "),
        "{body}"
    );
    assert!(body.contains(" argv-mem=10 "), "{body}");
    let list = s(r.cmd(&["CLIENT", "LIST", "TYPE", "normal"]));
    assert!(list.contains("name=conn1"));
    assert_eq!(
        s(r.cmd(&["CLIENT", "LIST", "TYPE", "foo"])),
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        s(r.cmd(&["CLIENT", "LIST", "ID", "x"])),
        "-ERR Invalid client ID\r\n"
    );
    assert_eq!(s(r.cmd(&["CLIENT", "LIST", "ID", "12345"])), "$0\r\n\r\n");
    assert_eq!(
        s(r.cmd(&["CLIENT", "LIST", "a", "b"])),
        "-ERR syntax error\r\n"
    );
    assert_eq!(s(r.cmd(&["CLIENT", "NO-EVICT", "on"])), "+OK\r\n");
    assert!(s(r.cmd(&["CLIENT", "INFO"])).contains(" flags=e "));
    assert_eq!(
        s(r.cmd(&["CLIENT", "FOO"])),
        "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"
    );
}

#[test]
fn client_kill_forms() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    let b_id = s(b.cmd(&["CLIENT", "ID"]));
    let b_id = b_id.trim_start_matches(':').trim();
    assert_eq!(
        s(a.cmd(&["CLIENT", "KILL", "1.2.3.4:5"])),
        "-ERR No such client\r\n"
    );
    assert_eq!(
        s(a.cmd(&["CLIENT", "KILL", "ID", "0"])),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        s(a.cmd(&["CLIENT", "KILL", "USER", "bob"])),
        "-ERR No such user 'bob'\r\n"
    );
    assert_eq!(
        s(a.cmd(&["CLIENT", "KILL", "SKIPME", "maybe"])),
        "-ERR syntax error\r\n"
    );
    assert_eq!(s(a.cmd(&["CLIENT", "KILL", "ID", b_id])), ":1\r\n");
    assert!(b.read_some(Duration::from_millis(300)).is_empty());
    // SKIPME defaults to yes: killing by type leaves the caller alone.
    assert_eq!(s(a.cmd(&["CLIENT", "KILL", "TYPE", "normal"])), ":0\r\n");
    let info = s(a.cmd(&["CLIENT", "INFO"]));
    let addr = info
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string();
    assert_eq!(s(a.cmd(&["CLIENT", "KILL", &addr])), "+OK\r\n");
}

#[test]
fn client_reply_off_and_skip() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    r.send(
        b"CLIENT REPLY SKIP\r\nPING\r\nECHO a\r\nCLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\n",
    );
    assert_eq!(
        s(r.read_some(Duration::from_millis(200))),
        "$1\r\na\r\n+OK\r\n"
    );
    assert_eq!(s(r.cmd(&["CLIENT", "REPLY", "x"])), "-ERR syntax error\r\n");
}

#[test]
fn client_pause_holds_writes_only_in_write_mode() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    assert_eq!(
        s(a.cmd(&["CLIENT", "PAUSE", "10", "x"])),
        "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"
    );
    assert_eq!(
        s(a.cmd(&["CLIENT", "PAUSE", "-1"])),
        "-ERR timeout is negative\r\n"
    );
    assert_eq!(s(a.cmd(&["CLIENT", "PAUSE", "400", "WRITE"])), "+OK\r\n");
    let start = Instant::now();
    assert_eq!(s(b.cmd(&["GET", "k"])), "$-1\r\n");
    assert!(start.elapsed() < Duration::from_millis(300));
    assert_eq!(s(b.cmd(&["SET", "k", "v"])), "+OK\r\n");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(s(a.cmd(&["CLIENT", "PAUSE", "100000", "ALL"])), "+OK\r\n");
    b.send(b"PING\r\n");
    assert!(b.read_some(Duration::from_millis(200)).is_empty());
    // The pauser is held too, so it cannot unpause; a third client does it in Redis as well
    // only once the pause ends. Kill the held client instead and check the server survives.
    let mut c = srv.raw();
    c.send(b"CLIENT UNPAUSE\r\n");
    assert!(c.read_some(Duration::from_millis(200)).is_empty());
}

#[test]
fn client_unpause_releases_held_clients() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    assert_eq!(s(a.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"])), "+OK\r\n");
    b.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert!(b.read_some(Duration::from_millis(200)).is_empty());
    assert_eq!(s(a.cmd(&["CLIENT", "UNPAUSE"])), "+OK\r\n");
    assert_eq!(s(b.read_reply()), "+OK\r\n");
}

#[test]
fn client_unblock_ends_a_blpop_with_timeout_or_error() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    let id = String::from_utf8(a.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_string();
    a.send(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nnokey\r\n$1\r\n0\r\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(b.cmd(&["CLIENT", "UNBLOCK", &id]), b":1\r\n".to_vec());
    assert_eq!(a.read_reply(), b"*-1\r\n".to_vec());
    a.send(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nnokey\r\n$1\r\n0\r\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(b.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), b":1\r\n".to_vec());
    assert_eq!(a.read_reply(), b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec());
    assert_eq!(b.cmd(&["CLIENT", "UNBLOCK", &id]), b":0\r\n".to_vec());
    assert_eq!(
        b.cmd(&["CLIENT", "UNBLOCK", &id, "FOO"]),
        b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n".to_vec()
    );
    // The unblocked client works normally afterwards.
    assert_eq!(a.cmd(&["PING"]), b"+PONG\r\n".to_vec());
}

/// Held clients count as blocked (INFO `blocked_clients`), and scripts are held by a WRITE
/// pause according to their flags: without flags or with write flags they are, with
/// `no-writes` they are not.
#[test]
fn client_pause_write_holds_writing_scripts_and_counts_them_blocked() {
    let srv = TestServer::start(&[]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    let mut c = srv.raw();
    let blocked = |a: &mut common::RawConn| {
        let info = s(a.cmd(&["INFO", "clients"]));
        info.lines().find_map(|l| l.strip_prefix("blocked_clients:").map(str::to_string)).unwrap()
    };
    assert_eq!(s(a.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"])), "+OK\r\n");
    assert_eq!(s(a.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"])), ":1\r\n");
    b.send(b"*3\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n0\r\n");
    c.send(b"*3\r\n$4\r\nEVAL\r\n$14\r\n#!lua\nreturn 2\r\n$1\r\n0\r\n");
    let start = Instant::now();
    while blocked(&mut a) != "2" {
        assert!(start.elapsed() < Duration::from_secs(5), "held clients never counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(b.read_some(Duration::from_millis(100)).is_empty());
    assert_eq!(s(a.cmd(&["CLIENT", "UNPAUSE"])), "+OK\r\n");
    assert_eq!(s(b.read_reply()), ":1\r\n");
    assert_eq!(s(c.read_reply()), ":2\r\n");
    assert_eq!(blocked(&mut a), "0");
}

/// Under an open-file limit too low for `maxclients`, the server lowers `maxclients` to fit
/// (a descriptor a client, 32 kept back), as Redis does: clients past it get Redis's
/// refusal instead of a connect that hangs in the listen queue because `accept` ran out of
/// descriptors.
#[test]
fn maxclients_fits_the_open_file_limit() {
    let t = TestServer::start_with_fd_limit(256, &[]);
    assert!(t.log().contains(
        "Current maximum open files is 256. maxclients has been reduced to 224 to compensate for low ulimit."
    ));
    let mut admin = t.raw();
    assert_eq!(
        s(admin.cmd(&["CONFIG", "GET", "maxclients"])),
        "*2\r\n$10\r\nmaxclients\r\n$3\r\n224\r\n"
    );
    assert_eq!(
        s(admin.cmd(&["CONFIG", "SET", "maxclients", "1000"])),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating \
         system is not able to handle the specified number of clients, try with 224\r\n"
    );
    assert_eq!(s(admin.cmd(&["CONFIG", "SET", "maxclients", "100"])), "+OK\r\n");
    assert_eq!(s(admin.cmd(&["CONFIG", "SET", "maxclients", "224"])), "+OK\r\n");
    // The admin connection is one of the 224.
    let mut open = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..240 {
        let mut c = t.raw();
        match s(c.cmd(&["PING"])).as_str() {
            "+PONG\r\n" => served += 1,
            "-ERR max number of clients reached\r\n" => refused += 1,
            other => panic!("unexpected reply {other:?}"),
        }
        open.push(c);
    }
    assert_eq!((served, refused), (223, 17));
    drop(open);
    common::wait_until("the refused and closed clients to be gone", || {
        s(admin.cmd(&["INFO", "clients"])).contains("connected_clients:1\r\n")
    });
    assert_eq!(s(t.raw().cmd(&["PING"])), "+PONG\r\n");
}
