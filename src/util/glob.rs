//! Redis's glob-style pattern matching (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`,
//! and `\` escapes. Used by KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE and others.

/// Returns true if `s` matches `pattern`; `nocase` folds ASCII case.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer, 0)
}

fn lower(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// Recursion depth limit, like Redis 7.0's protection against pathological patterns.
const MAX_NESTING: usize = 1000;

fn match_impl(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s = &s[1..];
            }
            b'[' => {
                p = &p[1..];
                let not = !p.is_empty() && p[0] == b'^';
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        // Redis compares C `char`s, which are signed: bytes >= 0x80 sort below
                        // ASCII in a range.
                        let (mut start, mut end) = (p[0] as i8, p[2] as i8);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let low = |c: i8| lower(c as u8, nocase) as i8;
                        let c = low(s[0] as i8);
                        p = &p[2..];
                        if c >= low(start) && c <= low(end) {
                            matched = true;
                        }
                    } else if lower(p[0], nocase) == lower(s[0], nocase) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                // Like Redis, a class left open at the end of the pattern ends it here.
                if p.is_empty() {
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    s = &s[1..];
                    return s.is_empty() && p.is_empty();
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if lower(p[0], nocase) != lower(s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if lower(c, nocase) != lower(s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while !p.is_empty() && p[0] == b'*' {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_rules_match_redis() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a*", "a"));
        assert!(!m("a?", "a"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(!m("foo", "foobar"));
    }

    #[test]
    fn glob_edge_cases_match_redis() {
        // Each case was checked against Redis 7.0's KEYS.
        let m = |p: &[u8], s: &[u8]| matches(p, s, false);
        // An unterminated class swallows the rest of the pattern.
        assert!(m(b"a[bc", b"ab"));
        assert!(!m(b"a[bc", b"abx"));
        // A trailing backslash matches a literal backslash.
        assert!(m(b"a\\", b"a\\"));
        // An escaped `]` inside a class.
        assert!(m(b"[\\]]", b"]"));
        // Ranges compare signed bytes, like C chars: [a-\xff] is the range -1..=97.
        let p = [b'[', b'a', b'-', 0xff, b']'];
        assert!(m(&p, &[0xff]));
        assert!(!m(&p, &[0x80]));
        assert!(m(&p, b"0"));
        assert!(!m(&p, b"z"));
        // The empty string matches nothing but an empty pattern (KEYS special-cases "*").
        assert!(!m(b"***", b""));
        assert!(m(b"", b""));
        assert!(!m(b"?", b""));
        assert!(m(b"*a*", b"a"));
        assert!(!m(b"a*b*c", b"abxcx"));
        assert!(matches(b"[A-C]x", b"bX", true));
    }
}
