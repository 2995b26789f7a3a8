//! SORT and SORT_RO (Redis `sort.c`).
//!
//! The elements of a list, set or sorted set are copied out of the keyspace first, so the BY
//! and GET lookups (which read other keys of the client's database) never overlap a borrow of
//! the source. SORT ... STORE is deterministic given the dataset, so it propagates verbatim,
//! as Redis does.

use std::cmp::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::zset::{Limits, ZSetValue};
use crate::keyspace::{ListValue, Value};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | DENYOOM, 1, 1, 1, sort),
    CommandSpec::new("sort_ro", -2, READONLY, 1, 1, 1, sort_ro),
];

/// Sorts (or just fetches) the elements of a list, set or sorted set.
///
/// ```text
/// SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
///     [ASC|DESC] [ALPHA] [STORE destination]
/// ```
fn sort(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, false)
}

/// Read-only SORT: the same options except STORE, which is a syntax error.
///
/// ```text
/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
///     [ASC|DESC] [ALPHA]
/// ```
fn sort_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, true)
}

/// Parsed SORT options.
#[derive(Debug, Default)]
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    /// Last BY pattern; one without `*` sets `dontsort`.
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a [u8]>,
}

/// Parses the options after the key, with Redis's precedence of errors (first bad option wins).
/// `full_access`: whether the client's user may read any key; BY and GET patterns name keys
/// no key pattern can vet in advance, so ACL refuses them otherwise, as Redis does.
fn parse<'a>(argv: &[&'a [u8]], readonly: bool, full_access: bool) -> Result<Opts<'a>, CmdError> {
    let mut o = Opts { limit_count: -1, ..Opts::default() };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit_start = args::int(argv[j + 1])?;
            o.limit_count = args::int(argv[j + 2])?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(argv[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pat = argv[j + 1];
            // A pattern without `*` names one constant key: nothing to sort by. Like Redis,
            // once set this stays set even if a later BY has a `*`.
            o.by = Some(pat);
            if !pat.contains(&b'*') {
                o.dontsort = true;
            } else if !full_access {
                return Err(CmdError::err(
                    "BY option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if !full_access {
                return Err(CmdError::err(
                    "GET option of SORT denied due to insufficient ACL permissions.",
                ));
            }
            o.gets.push(argv[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// One element to sort with its sort key.
struct Item {
    elem: Vec<u8>,
    score: f64,
    /// Looked-up BY value for ALPHA sorting with a pattern (None: missing key).
    cmp: Option<Vec<u8>>,
}

/// The source collection, copied out: elements in native order plus its type.
enum Source {
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    ZSet(Vec<Vec<u8>>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::List(v) | Source::Set(v) | Source::ZSet(v) => v.len(),
        }
    }
}

/// Copies the elements of the key to sort; a missing key is an empty list.
fn load_source(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Source, CmdError> {
    let (db, now) = (ctx.db, ctx.now);
    let Some(e) = ctx.ks.lookup_read(db, key, now) else {
        return Ok(Source::List(Vec::new()));
    };
    if let Value::ZSet(z) = &mut e.value {
        to_skiplist(z);
    }
    Ok(match &e.value {
        Value::List(l) => Source::List(l.iter().map(|b| b.to_vec()).collect()),
        Value::Set(s) => Source::Set(s.iter().map(|m| m.to_vec()).collect()),
        Value::ZSet(z) => {
            let mut v = Vec::with_capacity(z.len());
            z.for_range(0, z.len(), false, |m, _| v.push(m.to_vec()));
            Source::ZSet(v)
        }
        _ => return Err(CmdError::WrongType),
    })
}

/// Like Redis, SORT (and SORT_RO) converts a listpack sorted set to a skiplist for good, so
/// OBJECT ENCODING reports `skiplist` afterwards.
fn to_skiplist(z: &mut ZSetValue) {
    if matches!(z, ZSetValue::Skip(_)) {
        return;
    }
    // Zero limits make the new set a skiplist and keep it one while it is filled.
    let lim = Limits { max_entries: 0, max_value: 0 };
    let mut skip = ZSetValue::for_len(1, lim);
    z.for_range(0, z.len(), false, |m, sc| skip.insert_new(m, sc, lim));
    *z = skip;
}

/// Redis's LIMIT clamping: returns the inclusive `(start, end)` range of the output, where
/// `end < start` means an empty result.
fn clamp_limit(start: i64, count: i64, len: usize) -> (i64, i64) {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = start.max(0).min(len);
    let count = count.max(-1).min(len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    if start >= len {
        return (len - 1, len - 2);
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

fn sort_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], readonly: bool) -> CmdResult {
    let full_access = super::acl::full_key_access(ctx.client, ctx.cmd, argv);
    let mut o = parse(argv, readonly, full_access)?;
    let src = load_source(ctx, argv[1])?;
    // Sets have no stable order: when the result is stored or goes to a script, sort it so it
    // is the same on every replica and in the log.
    let for_script = ctx.client.id == crate::scripting::SCRIPT_CLIENT_ID;
    if o.dontsort && matches!(src, Source::Set(_)) && (o.store.is_some() || for_script) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = clamp_limit(o.limit_start, o.limit_count, src.len());
    let items = if o.dontsort {
        native_range(src, o.desc, start, end)
    } else {
        let mut items = sort_items(ctx, src, &o)?;
        let (s, e) = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
        if end >= start {
            items.truncate(e + 1);
            items.drain(..s);
        } else {
            items.clear();
        }
        items
    };
    match o.store {
        None => reply_items(ctx, &items, &o.gets),
        Some(dst) => store_items(ctx, dst, &items, &o.gets),
    }
    Ok(())
}

/// BY with a constant pattern: the elements in native order (lists and sorted sets honour
/// DESC by walking backwards), restricted to the LIMIT range.
fn native_range(src: Source, desc: bool, start: i64, end: i64) -> Vec<Vec<u8>> {
    if end < start {
        return Vec::new();
    }
    let (s, e) = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
    match src {
        Source::List(mut v) | Source::ZSet(mut v) => {
            if desc {
                v.reverse();
            }
            v.truncate(e + 1);
            v.drain(..s);
            v
        }
        // Redis takes a set's iteration order as is and ignores DESC.
        Source::Set(mut v) => {
            v.truncate(e + 1);
            v.drain(..s);
            v
        }
    }
}

/// Computes each element's sort key and sorts; a numeric key that does not parse as a double
/// is Redis's "One or more scores can't be converted into double".
fn sort_items(ctx: &mut Ctx<'_>, src: Source, o: &Opts<'_>) -> Result<Vec<Vec<u8>>, CmdError> {
    let elems = match src {
        Source::List(v) | Source::Set(v) | Source::ZSet(v) => v,
    };
    let mut items = Vec::with_capacity(elems.len());
    let mut bad = false;
    for elem in elems {
        let mut it = Item { elem, score: 0.0, cmp: None };
        let byval = match o.by {
            Some(pat) => lookup_pattern(ctx, pat, &it.elem),
            None => Some(it.elem.clone()),
        };
        if let Some(v) = byval {
            if o.alpha {
                if o.by.is_some() {
                    it.cmp = Some(v);
                }
            } else {
                match strtod(&v) {
                    Some(d) => it.score = d,
                    None => bad = true,
                }
            }
        }
        items.push(it);
    }
    if bad {
        return Err(CmdError::err("One or more scores can't be converted into double"));
    }
    let by = o.by.is_some();
    items.sort_by(|a, b| {
        let c = compare(a, b, o.alpha, by);
        if o.desc {
            c.reverse()
        } else {
            c
        }
    });
    Ok(items.into_iter().map(|i| i.elem).collect())
}

/// Redis's `sortCompare`: numeric keys tie-break on the element bytes; ALPHA with a BY pattern
/// puts missing keys first; ALPHA alone compares the elements.
fn compare(a: &Item, b: &Item, alpha: bool, by: bool) -> Ordering {
    if !alpha {
        return match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.elem.cmp(&b.elem),
            Some(o) => o,
        };
    }
    if by {
        return match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        };
    }
    a.elem.cmp(&b.elem)
}

/// C `strtod` over the whole string, as SORT uses it: leading whitespace skipped, an empty
/// rest is 0, trailing garbage, NaN and overflow/underflow (ERANGE) are errors.
fn strtod(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if s.is_empty() {
        return Some(0.0);
    }
    let d: f64 = match parse_hex(s) {
        Some(d) => d,
        None => s.parse().ok()?,
    };
    if d.is_nan() {
        return None;
    }
    let lower = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let literal_inf = lower == "inf" || lower == "infinity";
    if d.is_infinite() && !literal_inf {
        return None;
    }
    // Underflow to zero from a nonzero mantissa is ERANGE for strtod.
    if d == 0.0 && mantissa_nonzero(&lower) {
        return None;
    }
    Some(d)
}

/// Hexadecimal integers (`0x1f`), which `strtod` accepts and Rust's parser does not.
fn parse_hex(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let hex = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = hex.bytes().fold(0f64, |acc, c| acc * 16.0 + f64::from(hex_val(c)));
    Some(if neg { -v } else { v })
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

fn mantissa_nonzero(lower: &str) -> bool {
    let mantissa = lower.split('e').next().unwrap_or("");
    mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c))
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element and the key read as a string, or, with a non-empty `->field`
/// suffix after the `*`, as a hash field. Missing keys, wrong types and patterns without `*`
/// give None.
fn lookup_pattern(ctx: &mut Ctx<'_>, pat: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pat == b"#" {
        return Some(elem.to_vec());
    }
    let star = pat.iter().position(|&c| c == b'*')?;
    let after = &pat[star + 1..];
    let (post, field) = match find_arrow(after) {
        Some(i) if i + 2 < after.len() => (&after[..i], Some(&after[i + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + post.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    let (db, now) = (ctx.db, ctx.now);
    let e = ctx.ks.lookup_read(db, &key, now)?;
    match (&e.value, field) {
        (Value::Hash(h), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        (Value::Str(s), None) => Some(s.with_bytes(<[u8]>::to_vec)),
        _ => None,
    }
}

fn find_arrow(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"->")
}

/// Replies with the sorted elements, or with the GET lookups of each (null when missing).
fn reply_items(ctx: &mut Ctx<'_>, items: &[Vec<u8>], gets: &[&[u8]]) {
    if gets.is_empty() {
        ctx.out.array(items.len());
        for it in items {
            ctx.out.bulk(it);
        }
        return;
    }
    ctx.out.array(items.len() * gets.len());
    for it in items {
        for pat in gets {
            match lookup_pattern(ctx, pat, it) {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            }
        }
    }
}

/// STORE: replaces `dst` with a list of the result (missing GET values become empty
/// strings); an empty result deletes `dst`. Replies with the number of stored elements.
fn store_items(ctx: &mut Ctx<'_>, dst: &[u8], items: &[Vec<u8>], gets: &[&[u8]]) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    if gets.is_empty() {
        out.extend(items.iter().cloned());
    } else {
        for it in items {
            for pat in gets {
                out.push(lookup_pattern(ctx, pat, it).unwrap_or_default());
            }
        }
    }
    let db = ctx.db;
    let n = out.len();
    // Looked up first so that an expired destination is expired, not deleted, and counts as new.
    let existed = ctx.ks.lookup_write(db, dst, ctx.now).is_some();
    if n > 0 {
        let fill = ctx.srv.config.list_max_listpack_size;
        let list = ListValue::from_iter(out.iter().map(Vec::as_slice), fill);
        ctx.ks.db(db).set(dst, Value::List(list));
        ctx.signal_modified_key(db, dst);
        ctx.srv.signal_key_ready(db, dst);
        if !existed {
            ctx.notify('n', "new", db, dst);
        }
        ctx.notify('l', "sortstore", db, dst);
        ctx.dirty(n as u64);
    } else if existed && ctx.ks.db(db).remove(dst).is_some() {
        ctx.signal_modified_key(db, dst);
        ctx.notify('g', "del", db, dst);
        ctx.dirty(1);
    }
    ctx.out.integer(i64::try_from(n).unwrap_or(i64::MAX));
}

/// Key flags of the sorted key (COMMAND GETKEYSANDFLAGS).
const SRC_FLAGS: &[&str] = &["RO", "access"];
/// Key flags of the STORE destination.
const DST_FLAGS: &[&str] = &["OW", "update"];

/// Redis's `sortGetKeys` / `sortROGetKeys` for COMMAND GETKEYS: positions (in `argv`, which
/// starts with the command name) of the sorted key and, for SORT, of the last STORE
/// destination. Like Redis, the scan skips the arguments of LIMIT (2), GET and BY (1) but
/// otherwise does not validate the syntax.
pub(crate) fn get_keys(argv: &[&[u8]], readonly: bool) -> Vec<(usize, &'static [&'static str])> {
    let mut keys = vec![(1, SRC_FLAGS)];
    if readonly {
        return keys;
    }
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < argv.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store.map(|p| (p, DST_FLAGS)));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_c() {
        assert_eq!(strtod(b"1.5"), Some(1.5));
        assert_eq!(strtod(b"  -2"), Some(-2.0));
        assert_eq!(strtod(b""), Some(0.0));
        assert_eq!(strtod(b"0x10"), Some(16.0));
        assert_eq!(strtod(b"inf"), Some(f64::INFINITY));
        assert_eq!(strtod(b"abc"), None);
        assert_eq!(strtod(b"1 "), None);
        assert_eq!(strtod(b"nan"), None);
        assert_eq!(strtod(b"1e400"), None);
        assert_eq!(strtod(b"1e-400"), None);
        assert_eq!(strtod(b"0e5"), Some(0.0));
    }

    #[test]
    fn limit_clamping() {
        assert_eq!(clamp_limit(0, -1, 5), (0, 4));
        assert_eq!(clamp_limit(1, 2, 5), (1, 2));
        assert_eq!(clamp_limit(10, 2, 5), (4, 3));
        assert_eq!(clamp_limit(-3, 100, 5), (0, 4));
        assert_eq!(clamp_limit(0, 0, 5), (0, -1));
        assert_eq!(clamp_limit(0, -1, 0), (-1, -2));
    }

    #[test]
    fn store_key_extraction() {
        let argv: Vec<&[u8]> =
            vec![b"sort", b"abc", b"store", b"x", b"store", b"y", b"store", b"def"];
        let pos: Vec<usize> = get_keys(&argv, false).iter().map(|k| k.0).collect();
        assert_eq!(pos, [1, 7]);
        let argv: Vec<&[u8]> = vec![b"sort", b"abc", b"get", b"store", b"x"];
        assert_eq!(get_keys(&argv, false).len(), 1);
        assert_eq!(get_keys(&argv, true).len(), 1);
    }

    #[test]
    fn parse_options() {
        let argv: Vec<&[u8]> = vec![b"sort", b"k", b"store", b"d"];
        assert!(matches!(parse(&argv, true, true), Err(CmdError::Syntax)));
        assert_eq!(parse(&argv, false, true).unwrap().store, Some(&b"d"[..]));
        let argv: Vec<&[u8]> = vec![b"sort", b"k", b"by", b"nosort", b"get", b"#"];
        let o = parse(&argv, false, true).unwrap();
        assert!(o.dontsort && o.gets.len() == 1);
    }
}
