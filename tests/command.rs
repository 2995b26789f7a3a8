//! COMMAND introspection end to end, compared with Redis 7.0.15's replies.

mod common;

use common::TestServer;

fn s(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn command_info_matches_redis_bytes() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["COMMAND", "INFO", "echo", "nosuch"])),
        "*2\r\n*10\r\n$4\r\necho\r\n:2\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n\
         *2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n$-1\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "DOCS", "echo", "nosuch"])),
        "*2\r\n$4\r\necho\r\n*10\r\n$7\r\nsummary\r\n$21\r\nEcho the given string\r\n\
         $5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n\
         $4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n\
         *4\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
    );
}

#[test]
fn command_getkeys_uses_key_specs() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS", "GET", "k"])),
        "*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS", "DEL", "a", "b"])),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYSANDFLAGS", "DEL", "k"])),
        "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RM\r\n+delete\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS", "PING", "x"])),
        "-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS", "NOSUCH", "x"])),
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS", "GET", "a", "b"])),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "GETKEYS"])),
        "-ERR wrong number of arguments for 'command|getkeys' command\r\n"
    );
}

#[test]
fn command_count_and_list_only_show_implemented_commands() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    let count = s(r.cmd(&["COMMAND", "COUNT"]));
    let all = s(r.cmd(&["COMMAND"]));
    assert_eq!(all.split("\r\n").next().unwrap()[1..], count.trim()[1..]);
    let list = s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|*"]));
    assert!(
        list.contains("client|kill") && list.contains("client|tracking"),
        "{list}"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "lolwut*"])),
        "*1\r\n$6\r\nlolwut\r\n"
    );
    let acl = s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "acl*"]));
    assert!(acl.starts_with("*14\r\n$3\r\nacl\r\n") && acl.contains("acl|setuser"), "{acl}");
    assert_eq!(
        s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"])),
        "*0\r\n"
    );
    assert_eq!(
        s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "foo", "x"])),
        "-ERR syntax error\r\n"
    );
    let acl = s(r.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]));
    assert!(acl.contains("$5\r\nhello\r\n"), "{acl}");
    assert!(s(r.cmd(&["COMMAND", "HELP"])).starts_with("*21\r\n+COMMAND <subcommand>"));
}

/// No Redis module can be loaded (no C module API): LOAD fails with Redis's message and says
/// why in the log; LIST stays empty; UNLOAD finds nothing. Allowed only with
/// enable-module-command, like Redis.
#[test]
fn module_commands_without_modules() {
    let srv = TestServer::start(&["--enable-module-command", "yes"]);
    let mut c = srv.conn();
    let list: Vec<redis::Value> = redis::cmd("MODULE").arg("LIST").query(&mut c).unwrap();
    assert!(list.is_empty());
    let e = redis::cmd("MODULE").arg("LOAD").arg("/tmp/x.so").query::<()>(&mut c).unwrap_err();
    assert_eq!(e.detail(), Some("Error loading the extension. Please check the server logs."));
    let e = redis::cmd("MODULE").arg("UNLOAD").arg("x").query::<()>(&mut c).unwrap_err();
    assert_eq!(e.detail(), Some("Error unloading module: no such module with that name"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(srv.log().contains("Module /tmp/x.so failed to load: ferrodis cannot load Redis modules"));
}

/// LOLWUT: Redis 7.0's version line by default; VERSION 5 and 6 draw (randomly, so only the
/// shape is checked): Braille rows of `columns` characters, and `rows` lines of `columns`
/// colored cells; a verbatim string in RESP3.
#[test]
fn lolwut_versions() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(s(r.cmd(&["LOLWUT"])), "$18\r\nRedis ver. 7.0.15\n\r\n");
    let art = s(r.cmd(&["LOLWUT", "VERSION", "5", "10", "2", "2"]));
    let body = art.split_once("\r\n").unwrap().1;
    let (drawing, caption) = body.split_once("\n\n").unwrap();
    assert_eq!(
        caption,
        "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15\n\r\n"
    );
    for line in drawing.lines() {
        assert_eq!(line.chars().count(), 10);
        assert!(line.chars().all(|c| ('\u{2800}'..='\u{28ff}').contains(&c)), "{line}");
    }
    let art = s(r.cmd(&["LOLWUT", "VERSION", "6", "8", "4"]));
    let body = art.split_once("\r\n").unwrap().1;
    let lines: Vec<&str> = body.lines().collect();
    for line in &lines[..4] {
        assert_eq!(line.matches("\x1b[0m").count(), 8, "{line:?}");
    }
    assert!(lines[5].starts_with("Original 8 bit image from Plaguemon by hikikomori."));
    assert!(!s(r.cmd(&["HELLO", "3"])).is_empty());
    assert_eq!(s(r.cmd(&["LOLWUT"])), "=22\r\ntxt:Redis ver. 7.0.15\n\r\n");
}
