//! Geospatial commands: GEOADD, GEODIST, GEOHASH, GEOPOS and the searches (Redis `geo.c`).
//!
//! A geo set is an ordinary sorted set whose scores are 52-bit geohashes (see
//! `util::geohash`), so TYPE says `zset` and every Z command works on it. GEOADD turns its
//! positions into scores and runs ZADD, and it is ZADD that propagates, as Redis rewrites the
//! command. A search covers its area with up to nine geohash cells, reads each cell's score
//! range, keeps the members whose true distance (or box) matches, then sorts and trims; the
//! STORE variants write the result as a new sorted set (scores: the geohashes, or with
//! STOREDIST the distances) and propagate verbatim.

use std::cmp::Ordering;

use super::args::{self, is};
use super::flags::*;
use super::zset::read_z;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::keyspace::zset::Limits;
use crate::keyspace::{Value, ZSetValue};
use crate::protocol::{ReplyBuf, Resp};
use crate::util::geohash::{self, Search, Shape};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, 1, 1, 1, geoadd), // propagates as ZADD
    CommandSpec::new("geodist", -4, READONLY, 1, 1, 1, geodist),
    CommandSpec::new("geohash", -2, READONLY, 1, 1, 1, geohash),
    CommandSpec::new("geopos", -2, READONLY, 1, 1, 1, geopos),
    CommandSpec::new(
        "georadius",
        -6,
        WRITE | DENYOOM | MOVABLE_KEYS,
        1,
        1,
        1,
        georadius,
    ),
    CommandSpec::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM | MOVABLE_KEYS,
        1,
        1,
        1,
        georadiusbymember,
    ),
    CommandSpec::new("georadius_ro", -6, READONLY, 1, 1, 1, georadius_ro),
    CommandSpec::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        1,
        1,
        1,
        georadiusbymember_ro,
    ),
    CommandSpec::new("geosearch", -7, READONLY, 1, 1, 1, geosearch),
    CommandSpec::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        1,
        2,
        1,
        geosearchstore,
    ),
];

const UNIT_ERR: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const MEMBER_ERR: &str = "ERR could not decode requested zset member";

/// Parses a longitude and latitude, refusing positions outside the storable limits with
/// Redis's message (which prints them with `%f`).
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let (lon, lat) = (args::float(lon)?, args::float(lat)?);
    if !geohash::valid_lon_lat(lon, lat) {
        return Err(CmdError::err(format!(
            "invalid longitude,latitude pair {},{}",
            fmt_c_f(lon),
            fmt_c_f(lat)
        )));
    }
    Ok((lon, lat))
}

/// C's `%f`: six decimals, `inf` / `-inf` for infinities.
fn fmt_c_f(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{d:.6}")
}

/// Meters per unit (`m`, `km`, `ft`, `mi`, any case).
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    match () {
        _ if is(arg, "m") => Ok(1.0),
        _ if is(arg, "km") => Ok(1000.0),
        _ if is(arg, "ft") => Ok(0.3048),
        _ if is(arg, "mi") => Ok(1609.34),
        _ => Err(CmdError::raw(UNIT_ERR)),
    }
}

/// A float argument with a custom message in place of "value is not a valid float".
fn float_or(arg: &[u8], msg: &'static str) -> Result<f64, CmdError> {
    crate::util::num::parse_f64(arg).ok_or(CmdError::raw(msg))
}

/// `radius unit`: the radius and the unit's size in meters.
fn radius(r: &[u8], u: &[u8]) -> Result<(f64, f64), CmdError> {
    let r = float_or(r, "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(CmdError::raw("ERR radius cannot be negative"));
    }
    Ok((r, unit(u)?))
}

/// `width height unit`: the box and the unit's size in meters.
fn box_size(w: &[u8], h: &[u8], u: &[u8]) -> Result<(f64, f64, f64), CmdError> {
    let w = float_or(w, "ERR need numeric width")?;
    let h = float_or(h, "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::raw("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(u)?))
}

/// The decoded position of `member`, or Redis's error when it is not in the set.
fn member_pos(z: &ZSetValue, member: &[u8]) -> Result<(f64, f64), CmdError> {
    z.score(member)
        .map(geohash::decode_score)
        .ok_or(CmdError::raw(MEMBER_ERR))
}

/// A coordinate as Redis's `addReplyHumanLongDouble` sends it: a bulk string in RESP2, a
/// double in RESP3.
fn reply_coord(out: &mut ReplyBuf, d: f64) {
    let s = geohash::fmt_coord(d);
    match out.resp {
        Resp::V2 => out.bulk(s.as_bytes()),
        Resp::V3 => {
            out.raw(b",");
            out.raw(s.as_bytes());
            out.raw(b"\r\n");
        }
    }
}

/// A distance with four decimals, always a bulk string.
fn reply_distance(out: &mut ReplyBuf, d: f64) {
    out.bulk(geohash::fmt_distance(d).as_bytes());
}

// ---------------------------------------------------------------------------------------------
// GEOADD

/// Adds positions to a geo set (a sorted set scored by geohash).
///
/// ```text
/// GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]
/// ```
///
/// Like Redis, this checks and encodes the positions, then runs ZADD with the same options and
/// the geohashes as scores: the reply, the events and the propagated command are ZADD's.
fn geoadd(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < argv.len() {
        let a = argv[first];
        match () {
            _ if is(a, "nx") => nx = true,
            _ if is(a, "xx") => xx = true,
            _ if is(a, "ch") => {}
            _ => break,
        }
        first += 1;
    }
    if !(argv.len() - first).is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut zadd: Vec<Vec<u8>> = Vec::with_capacity(first + (argv.len() - first) / 3 * 2);
    zadd.push(b"zadd".to_vec());
    zadd.extend(argv[1..first].iter().map(|a| a.to_vec()));
    for triple in argv[first..].chunks(3) {
        let (lon, lat) = lon_lat(triple[0], triple[1])?;
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        zadd.push(score.to_string().into_bytes());
        zadd.push(triple[2].to_vec());
    }
    let zadd_argv: Vec<&[u8]> = zadd.iter().map(|a| a.as_slice()).collect();
    let Some((_, spec)) = super::registry().lookup(b"zadd") else {
        return Err(CmdError::err("ZADD is not available"));
    };
    let dirty_before = ctx.srv.dirty;
    let result = (spec.handler)(ctx, &zadd_argv);
    if ctx.srv.dirty != dirty_before {
        ctx.propagate(&zadd_argv);
    }
    result
}

// ---------------------------------------------------------------------------------------------
// GEODIST / GEOHASH / GEOPOS

/// Distance between two members, in meters or the given unit (four decimals); nil when either
/// is missing.
///
/// ```text
/// GEODIST key member1 member2 [M | KM | FT | MI]
/// ```
fn geodist(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let to_meters = match argv.len() {
        4 => 1.0,
        5 => unit(argv[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let Some(z) = read_z(ctx.ks, ctx.db, argv[1], ctx.now)? else {
        ctx.out.null();
        return Ok(());
    };
    match (z.score(argv[2]), z.score(argv[3])) {
        (Some(s1), Some(s2)) => {
            let (lon1, lat1) = geohash::decode_score(s1);
            let (lon2, lat2) = geohash::decode_score(s2);
            let d = geohash::distance(lon1, lat1, lon2, lat2) / to_meters;
            reply_distance(ctx.out, d);
        }
        _ => ctx.out.null(),
    }
    Ok(())
}

/// Standard 11-character geohash strings of members (nil for missing ones).
///
/// ```text
/// GEOHASH key [member [member ...]]
/// ```
fn geohash(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let z = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.bulk(&geohash::standard_geohash(s)),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// Positions (longitude, latitude) of members: the centre of each one's geohash cell; a null
/// array for missing ones.
///
/// ```text
/// GEOPOS key [member [member ...]]
/// ```
fn geopos(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let z = read_z(ctx.ks, ctx.db, argv[1], ctx.now)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let (lon, lat) = geohash::decode_score(s);
                ctx.out.array(2);
                reply_coord(ctx.out, lon);
                reply_coord(ctx.out, lat);
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The searches

/// Which command a search is, for what it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS (`ro`: GEORADIUS_RO, no STORE).
    Radius { ro: bool },
    /// GEORADIUSBYMEMBER (`ro`: the _RO form).
    ByMember { ro: bool },
    /// GEOSEARCH (`store`: GEOSEARCHSTORE).
    Search { store: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search request.
#[derive(Debug)]
struct Request<'a> {
    /// Centre and shape; `None` only when the source key does not exist (and the member to
    /// search around could not be looked up).
    search: Option<Search>,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    /// Stop as soon as `count` matches are found.
    any: bool,
    /// Maximum results, 0 for all.
    count: i64,
    store: Option<&'a [u8]>,
    storedist: bool,
}

/// What a search found about one member.
struct Point {
    member: Vec<u8>,
    lon: f64,
    lat: f64,
    /// Meters from the centre (then in the request's unit once replied).
    dist: f64,
    score: f64,
}

/// The parser's state: the request being built, what was seen, and the centre and shape
/// (with the unit's size) once known.
struct Parser<'a, 'z> {
    req: Request<'a>,
    z: Option<&'z ZSetValue>,
    center: Option<(f64, f64)>,
    shape: Option<(Shape, f64)>,
    frommember: bool,
    fromlonlat: bool,
    byradius: bool,
    bybox: bool,
}

/// Parses a search's arguments in Redis's order, so that the first problem found is the one
/// Redis reports. `z` is the source set (the member to search from is looked up in it while
/// parsing, as Redis does).
fn parse_request<'a>(
    argv: &[&'a [u8]],
    v: Variant,
    z: Option<&ZSetValue>,
) -> Result<Request<'a>, CmdError> {
    let req = Request {
        search: None,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
        storedist: false,
    };
    let mut p = Parser {
        req,
        z,
        center: None,
        shape: None,
        frommember: false,
        fromlonlat: false,
        byradius: false,
        bybox: false,
    };
    let base = match v {
        Variant::Radius { .. } => {
            p.center = Some(lon_lat(argv[2], argv[3])?);
            p.set_radius(argv[4], argv[5])?;
            6
        }
        Variant::ByMember { .. } => {
            // Without a source key the member and radius are not even checked: the reply
            // (empty array or 0) only depends on the options.
            if let Some(z) = z {
                p.center = Some(member_pos(z, argv[2])?);
                p.set_radius(argv[3], argv[4])?;
            }
            5
        }
        Variant::Search { store: false } => 2,
        Variant::Search { store: true } => {
            p.req.store = Some(argv[1]);
            3
        }
    };
    let mut i = base;
    while i < argv.len() {
        i += 1 + p.option(argv, i, v)?;
    }
    p.check(argv, v)?;
    if let (Some((lon, lat)), Some((shape, conversion))) = (p.center, p.shape) {
        p.req.search = Some(Search {
            lon,
            lat,
            shape,
            conversion,
        });
    }
    Ok(p.req)
}

impl<'a> Parser<'a, '_> {
    fn set_radius(&mut self, r: &[u8], u: &[u8]) -> CmdResult {
        let (r, conv) = radius(r, u)?;
        self.shape = Some((Shape::Radius(r), conv));
        Ok(())
    }

    /// Parses the option at `argv[i]`; returns how many of the following arguments it took.
    /// A keyword not valid here (or missing its arguments) is a syntax error, as in Redis,
    /// which tries the keywords in this order.
    fn option(&mut self, argv: &[&'a [u8]], i: usize, v: Variant) -> Result<usize, CmdError> {
        let can_store = matches!(
            v,
            Variant::Radius { ro: false } | Variant::ByMember { ro: false }
        );
        let search = matches!(v, Variant::Search { .. });
        let (a, after) = (argv[i], argv.len() - i - 1);
        let req = &mut self.req;
        match () {
            _ if is(a, "withdist") => req.withdist = true,
            _ if is(a, "withhash") => req.withhash = true,
            _ if is(a, "withcoord") => req.withcoord = true,
            _ if is(a, "any") => req.any = true,
            _ if is(a, "asc") => req.sort = Sort::Asc,
            _ if is(a, "desc") => req.sort = Sort::Desc,
            _ if is(a, "count") && after >= 1 => {
                req.count = args::int(argv[i + 1])?;
                if req.count <= 0 {
                    return Err(CmdError::err("COUNT must be > 0"));
                }
                return Ok(1);
            }
            _ if (is(a, "store") || is(a, "storedist")) && after >= 1 && can_store => {
                req.store = Some(argv[i + 1]);
                req.storedist = is(a, "storedist");
                return Ok(1);
            }
            _ if is(a, "storedist") && v == (Variant::Search { store: true }) => {
                req.storedist = true;
            }
            _ if is(a, "frommember") && after >= 1 && search && !self.fromlonlat => {
                if let Some(z) = self.z {
                    self.center = Some(member_pos(z, argv[i + 1])?);
                }
                self.frommember = true;
                return Ok(1);
            }
            _ if is(a, "fromlonlat") && after >= 2 && search && !self.frommember => {
                self.center = Some(lon_lat(argv[i + 1], argv[i + 2])?);
                self.fromlonlat = true;
                return Ok(2);
            }
            _ if is(a, "byradius") && after >= 2 && search && !self.bybox => {
                self.set_radius(argv[i + 1], argv[i + 2])?;
                self.byradius = true;
                return Ok(2);
            }
            _ if is(a, "bybox") && after >= 3 && search && !self.byradius => {
                let (w, h, conv) = box_size(argv[i + 1], argv[i + 2], argv[i + 3])?;
                self.shape = Some((Shape::Box(w, h), conv));
                self.bybox = true;
                return Ok(3);
            }
            _ => return Err(CmdError::Syntax),
        }
        Ok(0)
    }

    /// The checks Redis makes once all options are read.
    fn check(&self, argv: &[&[u8]], v: Variant) -> CmdResult {
        let req = &self.req;
        if req.store.is_some() && (req.withdist || req.withhash || req.withcoord) {
            let who = if v == (Variant::Search { store: true }) {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            };
            return Err(CmdError::err(format!(
                "{who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            )));
        }
        if let Variant::Search { .. } = v {
            // The command name as the client typed it.
            let name = args::text(argv[0]);
            if !(self.frommember || self.fromlonlat) {
                return Err(CmdError::err(format!(
                    "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
                )));
            }
            if !(self.byradius || self.bybox) {
                return Err(CmdError::err(format!(
                    "exactly one of BYRADIUS and BYBOX can be specified for {name}"
                )));
            }
        }
        if req.any && req.count == 0 {
            return Err(CmdError::err("the ANY argument requires COUNT argument"));
        }
        Ok(())
    }
}

/// Collects the members inside the search area from its cells, in Redis's order (cell by
/// cell, ascending score within a cell), stopping at `limit` matches (0: no limit).
fn collect(z: &ZSetValue, s: &Search, limit: usize) -> Vec<Point> {
    let cells = geohash::search_cells(s);
    let mut found = Vec::new();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // Very large areas can make adjacent neighbours the same cell; a cell equal to the
        // previous one scanned is skipped (Redis never compares with the centre cell here).
        if let Some(l) = last.filter(|&l| l > 0) {
            if cells[l] == *cell {
                continue;
            }
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        collect_cell(z, s, *cell, limit, &mut found);
        last = Some(i);
    }
    found
}

/// Appends the matching members of one cell.
fn collect_cell(
    z: &ZSetValue,
    s: &Search,
    cell: geohash::Hash,
    limit: usize,
    out: &mut Vec<Point>,
) {
    let (min, max) = cell.score_range();
    let (min, max) = (min as f64, max as f64);
    let lo = z.count_before(|sc, _| sc < min);
    let hi = z.count_before(|sc, _| sc < max);
    z.for_range(lo, hi, false, |m, score| {
        if limit > 0 && out.len() >= limit {
            return;
        }
        let (lon, lat) = geohash::decode_score(score);
        if let Some(dist) = geohash::within(s, lon, lat) {
            out.push(Point {
                member: m.to_vec(),
                lon,
                lat,
                dist,
                score,
            });
        }
    });
}

/// Redis's distance comparison (ascending; anything not greater or equal counts as less).
fn cmp_dist(a: &Point, b: &Point) -> Ordering {
    if a.dist > b.dist {
        Ordering::Greater
    } else if a.dist == b.dist {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

/// Orders the points and returns how many are kept. A full sort is stable (glibc's qsort is
/// a merge sort); a partial one follows Redis's own partial quicksort, so that members at the
/// same distance come out in the same order as Redis's.
fn sort_points(points: &mut [Point], sort: Sort, count: i64) -> usize {
    let len = points.len();
    let keep = if count == 0 {
        len
    } else {
        len.min(usize::try_from(count).unwrap_or(len))
    };
    let cmp = |a: &Point, b: &Point| match sort {
        Sort::Desc => cmp_dist(a, b).reverse(),
        _ => cmp_dist(a, b),
    };
    match sort {
        Sort::None => {}
        _ if keep == len => points.sort_by(cmp),
        _ => geohash::partial_sort(points, keep, &cmp),
    }
    keep
}

/// C's conversion of a score to `long long` (WITHHASH): truncation, or the x86 "integer
/// indefinite" value when out of range.
fn score_as_int(s: f64) -> i64 {
    // 2^63: the first value past i64 (exactly representable).
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO63..TWO63).contains(&s) {
        s as i64
    } else {
        i64::MIN
    }
}

/// Replies with the found members, each with the extras the request asked for.
fn reply_points(out: &mut ReplyBuf, req: &Request<'_>, points: &[Point], conversion: f64) {
    let opts = usize::from(req.withdist) + usize::from(req.withhash) + usize::from(req.withcoord);
    out.array(points.len());
    for p in points {
        if opts > 0 {
            out.array(opts + 1);
        }
        out.bulk(&p.member);
        if req.withdist {
            reply_distance(out, p.dist / conversion);
        }
        if req.withhash {
            out.integer(score_as_int(p.score));
        }
        if req.withcoord {
            out.array(2);
            reply_coord(out, p.lon);
            reply_coord(out, p.lat);
        }
    }
}

/// The encoding thresholds from the configuration.
fn limits(ctx: &Ctx<'_>) -> Limits {
    let c = &ctx.srv.config;
    Limits {
        max_entries: usize::try_from(c.zset_max_listpack_entries).unwrap_or(0),
        max_value: usize::try_from(c.zset_max_listpack_value).unwrap_or(0),
    }
}

/// Deletes `dst` (an empty STORE result) with its events; true if it existed.
fn delete_dest(ctx: &mut Ctx<'_>, dst: &[u8]) {
    let db = ctx.db;
    if ctx.ks.lookup_write(db, dst, ctx.now).is_some() {
        ctx.ks.db(db).remove(dst);
        ctx.signal_modified_key(db, dst);
        ctx.notify('g', "del", db, dst);
        ctx.dirty(1);
    }
}

/// Writes the found points to `dst` as a sorted set (scored by geohash, or by distance in the
/// request's unit), replacing it; an empty result deletes it. Replies with the size.
fn store_points(
    ctx: &mut Ctx<'_>,
    dst: &[u8],
    points: &[Point],
    storedist: bool,
    conv: f64,
    event: &str,
) {
    let n = points.len();
    if n == 0 {
        delete_dest(ctx, dst);
        ctx.out.integer(0);
        return;
    }
    let lim = limits(ctx);
    let mut z = ZSetValue::for_len(n, lim);
    for p in points {
        let score = if storedist { p.dist / conv } else { p.score };
        if z.score(&p.member).is_none() {
            z.insert_new(&p.member, score, lim);
        }
    }
    let db = ctx.db;
    let existed = ctx.ks.lookup_write(db, dst, ctx.now).is_some();
    ctx.ks.db(db).set(dst, Value::ZSet(z));
    ctx.signal_modified_key(db, dst);
    if !existed {
        ctx.notify('n', "new", db, dst);
    }
    ctx.notify('z', event, db, dst);
    ctx.srv.signal_key_ready(db, dst);
    ctx.dirty(n as u64);
    ctx.out.integer(n as i64);
}

/// The shared body of every search command.
fn search_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], v: Variant) -> CmdResult {
    let src = if let Variant::Search { store: true } = v {
        argv[2]
    } else {
        argv[1]
    };
    let (db, now) = (ctx.db, ctx.now);
    let z = read_z(ctx.ks, db, src, now)?;
    let req = parse_request(argv, v, z)?;
    let (Some(z), Some(search)) = (z, req.search) else {
        // No source set: nothing found.
        match req.store {
            Some(dst) => {
                delete_dest(ctx, dst);
                ctx.out.integer(0);
            }
            None => ctx.out.array(0),
        }
        return Ok(());
    };
    let mut sort = req.sort;
    // COUNT means "the nearest N" unless ANY says any N will do.
    if req.count != 0 && sort == Sort::None && !req.any {
        sort = Sort::Asc;
    }
    let limit = if req.any {
        usize::try_from(req.count).unwrap_or(usize::MAX)
    } else {
        0
    };
    let mut points = collect(z, &search, limit);
    let keep = sort_points(&mut points, sort, req.count);
    points.truncate(keep);
    match req.store {
        None => reply_points(ctx.out, &req, &points, search.conversion),
        Some(dst) => {
            let event = if let Variant::Search { .. } = v {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            store_points(ctx, dst, &points, req.storedist, search.conversion, event);
        }
    }
    Ok(())
}

/// Members within a radius of a position.
///
/// ```text
/// GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
///     [COUNT count [ANY]] [ASC|DESC] [STORE key | STOREDIST key]
/// ```
fn georadius(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::Radius { ro: false })
}

/// Members within a radius of a member.
///
/// ```text
/// GEORADIUSBYMEMBER key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
///     [COUNT count [ANY]] [ASC|DESC] [STORE key | STOREDIST key]
/// ```
fn georadiusbymember(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::ByMember { ro: false })
}

/// GEORADIUS without STORE / STOREDIST.
///
/// ```text
/// GEORADIUS_RO key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
///     [COUNT count [ANY]] [ASC|DESC]
/// ```
fn georadius_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::Radius { ro: true })
}

/// GEORADIUSBYMEMBER without STORE / STOREDIST.
///
/// ```text
/// GEORADIUSBYMEMBER_RO key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH]
///     [COUNT count [ANY]] [ASC|DESC]
/// ```
fn georadiusbymember_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::ByMember { ro: true })
}

/// Members inside a circle or a box around a member or a position.
///
/// ```text
/// GEOSEARCH key FROMMEMBER member | FROMLONLAT longitude latitude
///     BYRADIUS radius M|KM|FT|MI | BYBOX width height M|KM|FT|MI
///     [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
/// ```
fn geosearch(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::Search { store: false })
}

/// GEOSEARCH whose result is stored in `destination` (scored by geohash, or by distance with
/// STOREDIST); replies with its size.
///
/// ```text
/// GEOSEARCHSTORE destination source FROMMEMBER member | FROMLONLAT longitude latitude
///     BYRADIUS radius M|KM|FT|MI | BYBOX width height M|KM|FT|MI
///     [ASC|DESC] [COUNT count [ANY]] [STOREDIST]
/// ```
fn geosearchstore(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    search_generic(ctx, argv, Variant::Search { store: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(unit(b"KM"), Ok(1000.0));
        assert_eq!(unit(b"mi"), Ok(1609.34));
        assert_eq!(unit(b"yd").unwrap_err().to_string(), UNIT_ERR);
        assert_eq!(
            lon_lat(b"200", b"0").unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair 200.000000,0.000000"
        );
        assert_eq!(
            lon_lat(b"inf", b"0").unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair inf,0.000000"
        );
        assert_eq!(
            radius(b"-1", b"m").unwrap_err().to_string(),
            "ERR radius cannot be negative"
        );
        assert_eq!(
            radius(b"x", b"m").unwrap_err().to_string(),
            "ERR need numeric radius"
        );
    }

    fn parse(args: &[&str], v: Variant) -> Result<Request<'static>, String> {
        let argv: Vec<&'static [u8]> = args
            .iter()
            .map(|a| a.to_string().leak().as_bytes())
            .collect();
        parse_request(&argv, v, None).map_err(|e| e.to_string())
    }

    #[test]
    fn search_options_and_their_errors() {
        let v = Variant::Search { store: false };
        let r = parse(
            &[
                "GEOSEARCH",
                "k",
                "FROMLONLAT",
                "1",
                "2",
                "BYBOX",
                "3",
                "4",
                "km",
            ],
            v,
        )
        .unwrap();
        let s = r.search.unwrap();
        assert_eq!(
            (s.lon, s.lat, s.shape, s.conversion),
            (1.0, 2.0, Shape::Box(3.0, 4.0), 1000.0)
        );
        // Without a source set the member is not looked up.
        let r = parse(
            &[
                "GEOSEARCH",
                "k",
                "FROMMEMBER",
                "m",
                "BYRADIUS",
                "1",
                "m",
                "COUNT",
                "2",
            ],
            v,
        )
        .unwrap();
        assert!(r.search.is_none() && r.count == 2);
        let e = parse(
            &["GEOSEARCH", "k", "FROMMEMBER", "m", "FROMLONLAT", "1", "2"],
            v,
        );
        assert_eq!(e.unwrap_err(), "ERR syntax error");
        let e = parse(&["GEOSEARCH", "k", "FROMLONLAT", "1", "2", "STOREDIST"], v);
        assert_eq!(e.unwrap_err(), "ERR syntax error");
        let v = Variant::Radius { ro: false };
        let r = parse(
            &["GEORADIUS", "k", "1", "2", "3", "ft", "STOREDIST", "d"],
            v,
        )
        .unwrap();
        assert_eq!((r.store, r.storedist), (Some(&b"d"[..]), true));
        let e = parse(
            &[
                "GEORADIUS",
                "k",
                "1",
                "2",
                "3",
                "ft",
                "COUNT",
                "1",
                "ANY",
                "WITHHASH",
            ],
            v,
        );
        assert!(e.is_ok());
        let e = parse(
            &[
                "GEORADIUS",
                "k",
                "1",
                "2",
                "3",
                "ft",
                "STORE",
                "d",
                "WITHHASH",
            ],
            v,
        );
        assert!(e
            .unwrap_err()
            .starts_with("ERR STORE option in GEORADIUS is not compatible"));
    }

    #[test]
    fn score_to_int_like_c() {
        assert_eq!(score_as_int(3479099956230698.0), 3479099956230698);
        assert_eq!(score_as_int(1e30), i64::MIN);
        assert_eq!(score_as_int(-1.5), -1);
    }
}
