//! Splitting of inline commands (`SET k "hello world"\r\n`), with the quoting rules of Redis's
//! `sdssplitargs`, so telnet users and `redis-cli`-style scripts behave the same here.

/// Splits `line` into arguments. Returns `None` on unbalanced quotes, or when a closing quote is
/// not followed by a space (Redis rejects `"foo"bar`).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // C-string semantics, as in sdssplitargs: a NUL byte ends the input.
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= line.len() {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < line.len()
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < line.len() {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= line.len() {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < line.len() && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= line.len() {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::split_args;

    fn s(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(split_args(b"set k v").unwrap(), s(&["set", "k", "v"]));
        assert_eq!(split_args(b"  set   \"a b\"  'c d' ").unwrap(), s(&["set", "a b", "c d"]));
        assert_eq!(split_args(b"echo \"\\x41\\n\"").unwrap(), s(&["echo", "A\n"]));
        assert_eq!(split_args(b"echo 'it\\'s'").unwrap(), s(&["echo", "it's"]));
        assert_eq!(split_args(b"echo \"\"").unwrap(), s(&["echo", ""]));
        assert_eq!(split_args(b"").unwrap(), Vec::<Vec<u8>>::new());
        assert!(split_args(b"echo \"abc").is_none());
        assert!(split_args(b"echo \"a\"b").is_none());
        assert!(split_args(b"echo 'a").is_none());
    }
}
