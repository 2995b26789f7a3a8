//! Scripting: EVAL / EVALSHA / EVAL_RO / SCRIPT, FUNCTION / FCALL, the conversions between
//! Lua and RESP, the sandbox, propagation of a script's effects, and busy scripts.

mod common;

use std::rc::Rc;
use std::time::Duration;

use common::TestServer;
use ferrodis::config::Config;
use ferrodis::dispatch::execute;
use ferrodis::protocol::{ReplyBuf, Resp};
use ferrodis::server::client::{Client, ClientInfo, ClientShared};
use ferrodis::server::Server;
use redis::{RedisResult, Value};

fn q(con: &mut redis::Connection, args: &[&str]) -> RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

fn err(con: &mut redis::Connection, args: &[&str]) -> String {
    match q(con, args) {
        Err(e) => {
            let code = e.code().unwrap_or("");
            let detail = e.detail().unwrap_or("");
            format!("{code} {detail}").trim().to_string()
        }
        Ok(v) => panic!("expected an error from {args:?}, got {v:?}"),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn lua_values_convert_to_replies() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    assert_eq!(q(&mut c, &["EVAL", "return 3.99", "0"]).unwrap(), Value::Int(3));
    assert_eq!(q(&mut c, &["EVAL", "return 'x'", "0"]).unwrap(), bulk("x"));
    assert_eq!(q(&mut c, &["EVAL", "return true", "0"]).unwrap(), Value::Int(1));
    assert_eq!(q(&mut c, &["EVAL", "return false", "0"]).unwrap(), Value::Nil);
    assert_eq!(
        q(&mut c, &["EVAL", "return {1, 'a', {2}, nil, 5}", "0"]).unwrap(),
        Value::Array(vec![Value::Int(1), bulk("a"), Value::Array(vec![Value::Int(2)])])
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return {ok='fine'}", "0"]).unwrap(),
        Value::SimpleString("fine".into())
    );
    assert_eq!(err(&mut c, &["EVAL", "return {err='MY thing'}", "0"]), "MY thing");
    assert_eq!(
        err(&mut c, &["EVAL", "return redis.error_reply('OOPS bad')", "0"]),
        "OOPS bad"
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", "1", "k", "a", "b"])
            .unwrap(),
        Value::Array(vec![bulk("k"), bulk("a"), Value::Int(1), Value::Int(2)])
    );
}

#[test]
fn replies_convert_to_lua_values() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    q(&mut c, &["RPUSH", "l", "a", "b"]).unwrap();
    let v = q(&mut c, &["EVAL", "return type(redis.call('get', 'nokey'))", "0"]).unwrap();
    assert_eq!(v, bulk("boolean"));
    let v = q(&mut c, &["EVAL", "return redis.call('lrange', 'l', 0, -1)", "0"]).unwrap();
    assert_eq!(v, Value::Array(vec![bulk("a"), bulk("b")]));
    let v = q(&mut c, &["EVAL", "return redis.call('set', 'k', 'v').ok", "0"]).unwrap();
    assert_eq!(v, bulk("OK"));
    let v = q(&mut c, &["EVAL", "return redis.pcall('incr', 'l').err", "0"]).unwrap();
    assert_eq!(v, bulk("WRONGTYPE Operation against a key holding the wrong kind of value"));
    let body = "redis.setresp(3); return redis.call('hgetall', 'nokey').map ~= nil";
    let v = q(&mut c, &["EVAL", body, "0"]).unwrap();
    assert_eq!(v, Value::Int(1));
    // Numbers are sent to commands with %.17g.
    let v = q(&mut c, &["EVAL", "redis.call('set', 'n', 0.1); return redis.call('get', 'n')", "0"])
        .unwrap();
    assert_eq!(v, bulk("0.10000000000000001"));
}

#[test]
fn script_errors_match_redis() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["EVAL", "return redis.call('nosuch')", "0"]),
        format!(
            "ERR Unknown Redis command called from script script: {}, on @user_script:1.",
            sha1("return redis.call('nosuch')")
        )
    );
    assert_eq!(
        err(&mut c, &["EVAL", "return a", "0"]),
        format!(
            "ERR user_script:1: Script attempted to access nonexistent global variable 'a' \
             script: {}, on @user_script:1.",
            sha1("return a")
        )
    );
    assert!(err(&mut c, &["EVAL", "a = 1", "0"]).contains("Attempt to modify a readonly table"));
    assert!(err(&mut c, &["EVAL", "redis.call = nil", "0"])
        .contains("Attempt to modify a readonly table"));
    assert!(err(&mut c, &["EVAL", "print('x')", "0"])
        .contains("nonexistent global variable 'print'"));
    assert_eq!(
        err(&mut c, &["EVAL", "return 1 +", "0"]),
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'"
    );
    assert_eq!(
        err(&mut c, &["EVAL", "return redis.call('get')", "0"]).split(" script:").next(),
        Some("ERR Wrong number of args calling Redis command from script")
    );
    assert_eq!(
        err(&mut c, &["EVAL", "return 1", "2", "a"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(err(&mut c, &["EVAL", "return 1", "-1"]), "ERR Number of keys can't be negative");
    assert_eq!(
        err(&mut c, &["EVAL", "#!lua flags=bad\nreturn 1", "0"]),
        "ERR Unexpected flag in script shebang: bad"
    );
}

fn sha1(s: &str) -> String {
    sha1_smol::Sha1::from(s.as_bytes()).digest().to_string()
}

#[test]
fn evalsha_and_script_cache() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    let body = "return 'cached'";
    let sha = sha1(body);
    let noscript = "NOSCRIPT No matching script. Please use EVAL.";
    assert_eq!(err(&mut c, &["EVALSHA", &sha, "0"]), noscript);
    assert_eq!(err(&mut c, &["EVALSHA", "short", "0"]), noscript);
    assert_eq!(q(&mut c, &["SCRIPT", "LOAD", body]).unwrap(), bulk(&sha));
    assert_eq!(q(&mut c, &["EVALSHA", &sha.to_uppercase(), "0"]).unwrap(), bulk("cached"));
    assert_eq!(
        q(&mut c, &["SCRIPT", "EXISTS", &sha, "ffff"]).unwrap(),
        Value::Array(vec![Value::Int(1), Value::Int(0)])
    );
    q(&mut c, &["SCRIPT", "FLUSH"]).unwrap();
    assert_eq!(
        q(&mut c, &["SCRIPT", "EXISTS", &sha]).unwrap(),
        Value::Array(vec![Value::Int(0)])
    );
    assert_eq!(err(&mut c, &["SCRIPT", "KILL"]), "NOTBUSY No scripts in execution right now.");
    assert_eq!(
        err(&mut c, &["SCRIPT", "FLUSH", "bad"]),
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
}

#[test]
fn read_only_scripts_cannot_write() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    let e = err(&mut c, &["EVAL_RO", "return redis.call('set', 'a', 1)", "0"]);
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    let e = err(&mut c, &["EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 1)", "0"]);
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    assert_eq!(
        err(&mut c, &["EVAL_RO", "#!lua\nreturn 1", "0"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(q(&mut c, &["EVAL_RO", "return redis.call('get', 'a')", "0"]).unwrap(), Value::Nil);
}

fn new_client(id: u64) -> Client {
    let addr = "127.0.0.1:1".parse().unwrap();
    let shared = Rc::new(ClientShared::new(ClientInfo::new(id, addr, addr, -1)));
    Client::new(id, shared, true)
}

#[test]
fn script_effects_are_propagated_not_the_script() {
    let mut server = Server::new(Config::default());
    let mut client = new_client(1);
    let mut out = ReplyBuf::new(Resp::V2);
    server.state.journal.attach();
    let run = |server: &mut Server, client: &mut Client, out: &mut ReplyBuf, args: &[&str]| {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        out.buf.clear();
        execute(server, client, out, &argv);
        String::from_utf8_lossy(&out.buf).into_owned()
    };
    let body = "redis.call('set', KEYS[1], 'v'); redis.call('incr', 'n'); return 1";
    assert_eq!(run(&mut server, &mut client, &mut out, &["EVAL", body, "1", "k"]), ":1\r\n");
    let j = String::from_utf8_lossy(&server.state.journal.take_pending()).into_owned();
    assert!(j.contains("MULTI") && j.contains("EXEC"), "{j:?}");
    assert!(j.contains("$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"), "{j:?}");
    assert!(j.contains("$4\r\nincr\r\n$1\r\nn\r\n"), "{j:?}");
    assert!(!j.to_lowercase().contains("eval"), "{j:?}");
    // A read-only script propagates nothing; REPL_NONE drops a write's effect.
    run(&mut server, &mut client, &mut out, &["EVAL", "return redis.call('get', 'k')", "0"]);
    let body = "redis.set_repl(redis.REPL_NONE); redis.call('set', 'x', 1)";
    run(&mut server, &mut client, &mut out, &["EVAL", body, "0"]);
    assert!(server.state.journal.take_pending().is_empty());
}

#[test]
fn busy_script_answers_busy_and_can_be_killed() {
    let s = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut other = s.conn();
    let mut runner = s.raw();
    let pid: String = common::info_field(&mut other, "server", "process_id");
    let open_fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let fds_before = open_fds();
    let body = "while true do end";
    runner.send(
        format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n0\r\n", body.len(), body).as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        err(&mut other, &["PING"]),
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert!(err(&mut other, &["FUNCTION", "KILL"]).starts_with("BUSY"));
    assert_eq!(q(&mut other, &["SCRIPT", "KILL"]).unwrap(), Value::Okay);
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.ends_with(b"\r\n") {
        let n = std::io::Read::read(&mut runner.s, &mut buf).unwrap();
        assert!(n > 0);
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{reply}");
    assert_eq!(q(&mut other, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
    // The duplicates of the clients' sockets the busy script answered through are closed.
    assert_eq!(open_fds(), fds_before);
}

/// A connection opened while the script is busy is accepted and answered: `redis-cli script
/// kill` from a new shell must work.
#[test]
fn busy_script_can_be_killed_from_a_new_connection() {
    let s = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut runner = s.raw();
    let body = "while true do end";
    runner.send(
        format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n0\r\n", body.len(), body).as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut late = s.raw();
    let busy: &[u8] =
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    assert_eq!(late.cmd(&["PING"]), [busy, b"\r\n"].concat());
    assert_eq!(late.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    let reply = runner.read_reply();
    assert!(reply.starts_with(b"-ERR Script killed by user with SCRIPT KILL..."));
    assert_eq!(late.cmd(&["PING"]), b"+PONG\r\n");
    let mut c = s.conn();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert_eq!(clients.lines().count(), 3, "{clients}");
}

/// Transactions meet a busy script as in Redis: MULTI is accepted, a command refused with BUSY
/// dooms the transaction, and EXEC is refused with EXECABORT and ends it.
#[test]
fn transactions_during_a_busy_script() {
    let s = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut early = s.raw();
    let mut queued = s.raw();
    assert_eq!(queued.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(queued.cmd(&["INCR", "xx"]), b"+QUEUED\r\n");
    let mut runner = s.raw();
    let body = "while true do end";
    runner.send(
        format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n0\r\n", body.len(), body).as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let busy =
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
    assert_eq!(early.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(early.cmd(&["INCR", "xx"]), format!("-{busy}\r\n").into_bytes());
    assert_eq!(
        queued.cmd(&["EXEC"]),
        format!("-EXECABORT Transaction discarded because of: {busy}\r\n").into_bytes()
    );
    assert_eq!(early.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    assert!(runner.read_reply().starts_with(b"-ERR Script killed"));
    assert_eq!(early.cmd(&["INCR", "xx"]), b"+QUEUED\r\n");
    assert_eq!(
        early.cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(queued.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(early.cmd(&["GET", "xx"]), b"$-1\r\n");
}

#[test]
fn busy_script_that_wrote_is_unkillable() {
    let s = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut other = s.conn();
    let mut runner = s.raw();
    let body = "redis.call('set', 'x', 1) local t = redis.call('time')[1] \
                while tonumber(redis.call('time')[1]) < t + 2 do end return 'done'";
    runner.send(
        format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n0\r\n", body.len(), body).as_bytes(),
    );
    // Until the script has started (on a loaded machine that may take a while) there is
    // nothing to kill. Each probe uses a new connection, opened while the script runs.
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let mut e = err(&mut s.conn(), &["SCRIPT", "KILL"]);
    while e.starts_with("NOTBUSY") && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        e = err(&mut s.conn(), &["SCRIPT", "KILL"]);
    }
    assert!(e.starts_with("UNKILLABLE Sorry the script"), "{e}");
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.ends_with(b"done\r\n") {
        let n = std::io::Read::read(&mut runner.s, &mut buf).unwrap();
        assert!(n > 0);
        reply.extend_from_slice(&buf[..n]);
    }
    assert_eq!(q(&mut other, &["GET", "x"]).unwrap(), bulk("1"));
}

#[test]
fn function_load_and_fcall() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    let lib = "#!lua name=mylib\n\
               redis.register_function('echo', function(keys, args) \
               return {keys[1], args[1]} end)\n\
               redis.register_function{function_name='ro', callback=function() \
               return redis.call('set', 'a', 1) end, flags={'no-writes'}}";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", lib]).unwrap(), bulk("mylib"));
    assert_eq!(
        q(&mut c, &["FCALL", "echo", "1", "k", "v"]).unwrap(),
        Value::Array(vec![bulk("k"), bulk("v")])
    );
    let e = err(&mut c, &["FCALL", "ro", "0"]);
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    assert_eq!(err(&mut c, &["FCALL", "nosuch", "0"]), "ERR Function not found");
    assert_eq!(err(&mut c, &["FUNCTION", "LOAD", lib]), "ERR Library 'mylib' already exists");
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", "REPLACE", lib]).unwrap(), bulk("mylib"));
    let dump = match q(&mut c, &["FUNCTION", "DUMP"]).unwrap() {
        Value::BulkString(b) => b,
        other => panic!("{other:?}"),
    };
    q(&mut c, &["FUNCTION", "FLUSH"]).unwrap();
    assert_eq!(err(&mut c, &["FCALL", "echo", "0"]), "ERR Function not found");
    let r: String = redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query(&mut c).unwrap();
    assert_eq!(r, "OK");
    // {nil, 'x'}: the array stops at the first nil.
    assert_eq!(q(&mut c, &["FCALL", "echo", "0", "x"]).unwrap(), Value::Array(vec![]));
    assert_eq!(
        err(&mut c, &["FUNCTION", "RESTORE", "garbage"]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(q(&mut c, &["FUNCTION", "DELETE", "mylib"]).unwrap(), Value::Okay);
    assert_eq!(err(&mut c, &["FUNCTION", "DELETE", "mylib"]), "ERR Library not found");
    assert_eq!(
        err(&mut c, &["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"]),
        "ERR Error registering functions: ERR user_function:2: Script attempted to access \
         nonexistent global variable 'call'"
    );
}

#[test]
fn shutdown_nosave_stops_a_busy_script() {
    let mut s = TestServer::start(&["--busy-reply-threshold", "50"]);
    let mut other = s.raw();
    let mut runner = s.raw();
    let body = "redis.call('set', 'x', 1) while true do end";
    runner.send(
        format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{}\r\n$1\r\n0\r\n", body.len(), body).as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(300));
    other.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    let mut buf = [0u8; 64];
    // The caller's connection is closed without a reply, and the server exits.
    let n = std::io::Read::read(&mut runner.s, &mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    let child = s.child.as_mut().unwrap();
    let mut exited = false;
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(exited, "server still running after SHUTDOWN NOSAVE");
}

/// Runs one command in process and answers its raw reply.
fn run_local(server: &mut Server, client: &mut Client, args: &[&str]) -> String {
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let mut out = ReplyBuf::new(Resp::V2);
    execute(server, client, &mut out, &argv);
    String::from_utf8_lossy(&out.buf).into_owned()
}

#[test]
fn keys_and_argv_changed_by_a_script_do_not_reach_the_next_call() {
    let mut server = Server::new(Config::default());
    let mut c = new_client(1);
    let mut r = |args: &[&str]| run_local(&mut server, &mut c, args);
    assert_eq!(r(&["EVAL", "KEYS[3] = 'x'; ARGV.y = 1; return 1", "2", "a", "b", "c"]), ":1\r\n");
    assert_eq!(r(&["EVAL", "return {#KEYS, #ARGV, ARGV.y}", "2", "a", "b"]), "*2\r\n:2\r\n:0\r\n");
    let mt = "setmetatable(KEYS, {__index = function() return 'm' end}); return 1";
    assert_eq!(r(&["EVAL", mt, "0"]), ":1\r\n");
    assert_eq!(r(&["EVAL", "return KEYS[1]", "0"]), "$-1\r\n");
    // Fewer items than the call before: the old ones are gone.
    let three = "*3\r\n$1\r\np\r\n$1\r\nq\r\n$1\r\nr\r\n";
    assert_eq!(r(&["EVAL", "return ARGV", "0", "p", "q", "r"]), three);
    assert_eq!(r(&["EVAL", "return {ARGV[1], ARGV[2], #ARGV}", "0", "s"]), "*1\r\n$1\r\ns\r\n");
    assert_eq!(r(&["EVAL", "return #ARGV + #KEYS", "1", "k"]), ":1\r\n");
}

#[test]
fn redis_call_errors_name_the_script_line_even_when_tail_called() {
    let mut server = Server::new(Config::default());
    let mut c = new_client(1);
    let mut r = |args: &[&str]| run_local(&mut server, &mut c, args);
    let reply = r(&["EVAL", "local x = 1\nreturn redis.call('nosuch')", "0"]);
    assert!(reply.starts_with("-ERR Unknown Redis command called from script script: "), "{reply}");
    assert!(reply.ends_with(", on @user_script:2.\r\n"), "{reply}");
    // redis.pcall, setresp and set_repl still go through the permanent functions.
    assert_eq!(
        r(&["EVAL", "return redis.pcall('nosuch')", "0"]),
        "-ERR Unknown Redis command called from script\r\n"
    );
    let reply = r(&["EVAL", "redis.setresp(4)", "0"]);
    assert!(reply.starts_with("-ERR RESP version must be 2 or 3. script:"), "{reply}");
    assert_eq!(
        r(&["EVAL", "local ok, e = pcall(redis.call, 'nosuch') return e", "0"]),
        "$44\r\nERR Unknown Redis command called from script\r\n"
    );
    // Numbers reach the command as Redis formats them.
    assert_eq!(r(&["EVAL", "return redis.call('set', 'n', 1.5)", "0"]), "+OK\r\n");
    assert_eq!(r(&["EVAL", "return redis.call('get', 'n')", "0"]), "$3\r\n1.5\r\n");
    let big = "return redis.call('incrby', 'i', 12345678901)";
    assert_eq!(r(&["EVAL", big, "0"]), ":12345678901\r\n");
}

#[test]
fn a_library_may_keep_redis_call_for_later_calls() {
    let mut server = Server::new(Config::default());
    let mut c = new_client(1);
    let mut r = |args: &[&str]| run_local(&mut server, &mut c, args);
    let lib = "#!lua name=keep\nlocal kept = {}\n\
        redis.register_function('f', function(keys)\n\
          kept.call = kept.call or redis.call\n\
          return kept.call('incr', keys[1])\n\
        end)";
    assert_eq!(r(&["FUNCTION", "LOAD", lib]), "$4\r\nkeep\r\n");
    assert_eq!(r(&["FCALL", "f", "1", "k"]), ":1\r\n");
    assert_eq!(r(&["FCALL", "f", "1", "k"]), ":2\r\n");
}

#[test]
fn the_eval_interpreter_stays_near_its_live_size() {
    let mut server = Server::new(Config::default());
    let mut c = new_client(1);
    let mut r = |args: &[&str]| run_local(&mut server, &mut c, args);
    for _ in 0..5000 {
        assert_eq!(r(&["EVAL", "return redis.call('incr', KEYS[1]) > 0", "1", "x"]), ":1\r\n");
    }
    let used = server.state.scripting.eval_memory();
    assert!(used < 100 * 1024, "{used}");
}

/// MONITOR shows EVAL, EVALSHA and FCALL before the commands their script runs, and those as
/// `[<db> lua]`, as Redis does.
#[test]
fn monitor_shows_the_script_call_then_its_commands_as_lua() {
    let s = TestServer::start(&[]);
    let mut mon = s.raw();
    assert_eq!(mon.cmd(&["MONITOR"]), b"+OK\r\n");
    let mut c = s.conn();
    let _: Value = redis::cmd("EVAL")
        .arg("redis.call('set',KEYS[1],ARGV[1])")
        .arg(1)
        .arg("foo")
        .arg("bar")
        .query(&mut c)
        .unwrap();
    let lib = "#!lua name=t\nredis.register_function('test', function() \
               return redis.call('set','x','1') end)";
    let _: Value = redis::cmd("FUNCTION").arg("LOAD").arg(lib).query(&mut c).unwrap();
    let _: Value = redis::cmd("FCALL").arg("test").arg(0).query(&mut c).unwrap();
    let mut text = String::new();
    while text.matches("\r\n").count() < 5 {
        let got = mon.read_some(Duration::from_millis(200));
        assert!(!got.is_empty(), "monitor stopped at {text:?}");
        text.push_str(&String::from_utf8_lossy(&got));
    }
    // Drop the timestamp and the peer address of each line.
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let rest = l.split_once(" [").unwrap().1;
            let (db_who, args) = rest.split_once("] ").unwrap();
            let who = if db_who.ends_with(" lua") { "lua" } else { "client" };
            format!("{who} {args}")
        })
        .collect();
    assert_eq!(
        lines,
        [
            r#"client "EVAL" "redis.call('set',KEYS[1],ARGV[1])" "1" "foo" "bar""#,
            r#"lua "set" "foo" "bar""#,
            &format!("client \"FUNCTION\" \"LOAD\" {:?}", lib).replace("\\'", "'"),
            r#"client "FCALL" "test" "0""#,
            r#"lua "set" "x" "1""#,
        ]
    );
}

/// `redis.call` and `redis.pcall` take as many arguments as Lua can pass (`unpack` of a
/// 7999-item table, the case Redis's own suite checks), in EVAL and in FCALL, from the very
/// first call of a fresh interpreter on.
#[test]
fn script_calls_take_thousands_of_arguments() {
    let s = TestServer::start(&[]);
    let mut c = s.conn();
    let body = |call: &str, key: &str| {
        format!(
            "local a = {{}} for i=1,7999 do a[i] = 1 end return redis.{call}('lpush', '{key}', unpack(a))"
        )
    };
    assert_eq!(q(&mut c, &["EVAL", &body("pcall", "p"), "0"]).unwrap(), Value::Int(7999));
    assert_eq!(q(&mut c, &["EVAL", &body("call", "c"), "0"]).unwrap(), Value::Int(7999));
    let lib = format!(
        "#!lua name=many\n\
         redis.register_function('viacall', function() {} end)\n\
         redis.register_function('viapcall', function() {} end)",
        body("call", "fc"),
        body("pcall", "fp")
    );
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", &lib]).unwrap(), bulk("many"));
    assert_eq!(q(&mut c, &["FCALL", "viapcall", "0"]).unwrap(), Value::Int(7999));
    assert_eq!(q(&mut c, &["FCALL", "viacall", "0"]).unwrap(), Value::Int(7999));
    // A fresh EVAL interpreter (SCRIPT FLUSH) as well.
    assert_eq!(q(&mut c, &["SCRIPT", "FLUSH"]).unwrap(), Value::Okay);
    assert_eq!(q(&mut c, &["EVAL", &body("pcall", "p"), "0"]).unwrap(), Value::Int(15998));
}
