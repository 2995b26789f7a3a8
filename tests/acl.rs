//! ACL end to end: users and AUTH, the ACL command, NOPERM refusals (top level, MULTI, EXEC,
//! scripts), the ACL log, the ACL file and `user` lines in the config file.

mod common;

use std::time::Duration;

use common::TestServer;

fn s(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

const NOPERM_GET: &str = "-NOPERM this user has no permissions to run the 'get' command\r\n";
const NOPERM_KEY: &str =
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
const NOPERM_CHANNEL: &str =
    "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";

#[test]
fn default_user_and_requirepass() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(s(r.cmd(&["ACL", "WHOAMI"])), "$7\r\ndefault\r\n");
    assert_eq!(
        s(r.cmd(&["ACL", "LIST"])),
        "*1\r\n$34\r\nuser default on nopass ~* &* +@all\r\n"
    );
    assert_eq!(
        s(r.cmd(&["CONFIG", "SET", "requirepass", "secret"])),
        "+OK\r\n"
    );
    let hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    let listed = s(r.cmd(&["ACL", "LIST"]));
    assert!(
        listed.contains(&format!("user default on #{hash} ~* &* +@all")),
        "{listed}"
    );
    // Existing connections stay authenticated; new ones must AUTH.
    let mut other = srv.raw();
    assert!(s(other.cmd(&["GET", "x"])).starts_with("-NOAUTH"));
    assert_eq!(s(other.cmd(&["AUTH", "wrong"])), WRONGPASS);
    assert_eq!(s(other.cmd(&["AUTH", "default", "secret"])), "+OK\r\n");
    assert_eq!(s(other.cmd(&["GET", "x"])), "$-1\r\n");
    assert_eq!(s(r.cmd(&["CONFIG", "SET", "requirepass", ""])), "+OK\r\n");
    assert_eq!(
        s(r.cmd(&["AUTH", "x"])),
        "-ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?\r\n"
    );
}

#[test]
fn users_permissions_and_refusals() {
    let srv = TestServer::start(&[]);
    let mut admin = srv.raw();
    let rules = [
        "ACL", "SETUSER", "alice", "on", ">pw", "~obj:*", "%R~read*", "&chan", "+@all",
    ];
    assert_eq!(s(admin.cmd(&rules)), "+OK\r\n");
    assert_eq!(
        s(admin.cmd(&["ACL", "SETUSER", "alice", "-get"])),
        "+OK\r\n"
    );
    let mut r = srv.raw();
    assert_eq!(s(r.cmd(&["AUTH", "alice", "nope"])), WRONGPASS);
    assert_eq!(s(r.cmd(&["AUTH", "alice", "pw"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["ACL", "WHOAMI"])), "$5\r\nalice\r\n");
    assert_eq!(s(r.cmd(&["GET", "obj:1"])), NOPERM_GET);
    assert_eq!(s(r.cmd(&["SET", "obj:1", "v"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["SET", "other", "v"])), NOPERM_KEY);
    assert_eq!(s(r.cmd(&["SET", "readme", "v"])), NOPERM_KEY);
    assert_eq!(s(r.cmd(&["EXISTS", "readme"])), ":0\r\n");
    assert_eq!(s(r.cmd(&["PUBLISH", "chan", "m"])), ":0\r\n");
    assert_eq!(s(r.cmd(&["PUBLISH", "other", "m"])), NOPERM_CHANNEL);
    let info = s(r.cmd(&["CLIENT", "INFO"]));
    assert!(info.contains(" user=alice "), "{info}");
    // The log holds the refusals, newest first, with repeats grouped.
    assert_eq!(s(r.cmd(&["GET", "obj:2"])), NOPERM_GET);
    let log = s(admin.cmd(&["ACL", "LOG", "2"]));
    assert!(log.starts_with("*2\r\n*14\r\n$5\r\ncount\r\n:2\r\n$6\r\nreason\r\n$7\r\ncommand\r\n"));
    assert!(log.contains("$6\r\nobject\r\n$3\r\nget\r\n$8\r\nusername\r\n$5\r\nalice\r\n"));
    assert_eq!(s(admin.cmd(&["ACL", "LOG", "RESET"])), "+OK\r\n");
    assert_eq!(s(admin.cmd(&["ACL", "LOG"])), "*0\r\n");
    // RESET goes back to the default user.
    assert_eq!(s(r.cmd(&["RESET"])), "+RESET\r\n");
    assert_eq!(s(r.cmd(&["ACL", "WHOAMI"])), "$7\r\ndefault\r\n");
}

#[test]
fn dryrun_getuser_and_errors() {
    let srv = TestServer::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["ACL", "SETUSER", "bob", "on", "nopass", "+get", "~k*"])),
        "+OK\r\n"
    );
    assert_eq!(s(r.cmd(&["ACL", "DRYRUN", "bob", "GET", "k1"])), "+OK\r\n");
    assert_eq!(
        s(r.cmd(&["ACL", "DRYRUN", "bob", "GET", "x"])),
        "$50\r\nThis user has no permissions to access the 'x' key\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "DRYRUN", "bob", "SET", "k1", "v"])),
        "$53\r\nThis user has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "DRYRUN", "nobody", "GET", "x"])),
        "-ERR User 'nobody' not found\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "GETUSER", "bob"])),
        "*12\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$6\r\nnopass\r\n$9\r\npasswords\r\n*0\r\n\
         $8\r\ncommands\r\n$10\r\n-@all +get\r\n$4\r\nkeys\r\n$3\r\n~k*\r\n$8\r\nchannels\r\n\
         $0\r\n\r\n$9\r\nselectors\r\n*0\r\n"
    );
    assert_eq!(s(r.cmd(&["ACL", "GETUSER", "nobody"])), "$-1\r\n");
    assert_eq!(
        s(r.cmd(&["ACL", "SETUSER", "bob", "+nosuch"])),
        "-ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in \
         ACL\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "SETUSER", "bob", "(~x", "+get"])),
        "-ERR Unmatched parenthesis in acl selector starting at '(~x'.\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "DELUSER", "default"])),
        "-ERR The 'default' user cannot be removed\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "CAT", "nosuch"])),
        "-ERR Unknown category 'nosuch'\r\n"
    );
    assert_eq!(
        s(r.cmd(&["ACL", "GENPASS", "8"])).len(),
        "$2\r\nxx\r\n".len()
    );
    assert_eq!(
        s(r.cmd(&["ACL", "USERS"])),
        "*2\r\n$3\r\nbob\r\n$7\r\ndefault\r\n"
    );
}

#[test]
fn deleting_a_user_disconnects_its_clients() {
    let srv = TestServer::start(&[]);
    let mut admin = srv.raw();
    assert_eq!(
        s(admin.cmd(&["ACL", "SETUSER", "carl", "on", "nopass", "+@all", "~*"])),
        "+OK\r\n"
    );
    let mut c = srv.raw();
    assert_eq!(s(c.cmd(&["AUTH", "carl", "x"])), "+OK\r\n");
    let list = s(admin.cmd(&["CLIENT", "LIST"]));
    assert!(list.contains("user=carl"), "{list}");
    assert_eq!(
        s(admin.cmd(&["CLIENT", "KILL", "USER", "nosuch"])),
        "-ERR No such user 'nosuch'\r\n"
    );
    assert_eq!(
        s(admin.cmd(&["ACL", "DELUSER", "carl", "nosuch"])),
        ":1\r\n"
    );
    c.send(b"PING\r\n");
    assert!(c.read_some(Duration::from_millis(300)).is_empty());
}

#[test]
fn transactions_and_scripts_are_checked() {
    let srv = TestServer::start(&[]);
    let mut admin = srv.raw();
    let rules = [
        "ACL", "SETUSER", "dan", "on", "nopass", "+@all", "-get", "~*", "&*",
    ];
    assert_eq!(s(admin.cmd(&rules)), "+OK\r\n");
    let mut r = srv.raw();
    assert_eq!(s(r.cmd(&["AUTH", "dan", "x"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["GET", "k"])), NOPERM_GET);
    assert!(s(r.cmd(&["EXEC"])).starts_with("-EXECABORT"));
    // Rules that change between queueing and EXEC are checked again.
    assert_eq!(s(r.cmd(&["MULTI"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["SET", "k", "v"])), "+QUEUED\r\n");
    assert_eq!(s(admin.cmd(&["ACL", "SETUSER", "dan", "-set"])), "+OK\r\n");
    assert_eq!(
        s(r.cmd(&["EXEC"])),
        "*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated \
         and the EXEC call. This command is no longer allowed for the following reason: no \
         permission to execute the command or subcommand\r\n"
    );
    let err = s(r.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]));
    assert!(
        err.starts_with("-ERR The user executing the script can't run this command or subcommand"),
        "{err}"
    );
    let check = "return {redis.acl_check_cmd('get','k'), redis.acl_check_cmd('incr','k')}";
    assert_eq!(s(r.cmd(&["EVAL", check, "0"])), "*2\r\n$-1\r\n:1\r\n");
}

#[test]
fn acl_file_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.acl");
    std::fs::write(&file, "user eve on nopass ~e* +get\n").unwrap();
    let path = file.display().to_string();
    let srv = TestServer::start_in(dir.path(), &["--aclfile", &path]);
    let mut r = srv.raw();
    assert_eq!(
        s(r.cmd(&["ACL", "LIST"])),
        "*2\r\n$34\r\nuser default on nopass ~* &* +@all\r\n\
         $47\r\nuser eve on nopass ~e* resetchannels -@all +get\r\n"
    );
    assert_eq!(s(r.cmd(&["ACL", "SETUSER", "fay", "on", ">pw"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["ACL", "SAVE"])), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved.lines().count(), 3);
    assert!(saved.contains("user fay on #"), "{saved}");
    std::fs::write(&file, "user eve on nopass ~e* +nosuch\n").unwrap();
    let err = s(r.cmd(&["ACL", "LOAD"]));
    assert!(
        err.contains("Error in applying operation '+nosuch'"),
        "{err}"
    );
    assert!(
        err.contains("no change to the previously active ACL rules was performed"),
        "{err}"
    );
    std::fs::write(&file, "user eve on nopass ~* +@all\n").unwrap();
    assert_eq!(s(r.cmd(&["ACL", "LOAD"])), "+OK\r\n");
    assert_eq!(
        s(r.cmd(&["ACL", "USERS"])),
        "*2\r\n$7\r\ndefault\r\n$3\r\neve\r\n"
    );
}

#[test]
fn user_lines_in_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    std::fs::write(
        &conf,
        "user gus on nopass ~g* +@read\nacl-pubsub-default allchannels\n",
    )
    .unwrap();
    let srv = TestServer::start_with_file(&conf, &[]);
    let mut r = srv.raw();
    let gus = s(r.cmd(&["ACL", "GETUSER", "gus"]));
    assert!(
        gus.contains("$12\r\n-@all +@read\r\n$4\r\nkeys\r\n$3\r\n~g*\r\n"),
        "{gus}"
    );
    assert!(gus.contains("$8\r\nchannels\r\n$2\r\n&*\r\n"), "{gus}");
    assert_eq!(s(r.cmd(&["AUTH", "gus", "x"])), "+OK\r\n");
    assert_eq!(s(r.cmd(&["GET", "gx"])), "$-1\r\n");
    assert_eq!(s(r.cmd(&["GET", "x"])), NOPERM_KEY);
}
