//! LEB128 varints: the length and delta prefixes of every compact encoding (hash and sorted-set
//! listpacks, list chunks), so that one small number costs one byte.

/// Bytes `n` takes.
pub fn len(mut n: u64) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

/// Appends `n`.
pub fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads the varint at `*pos` and moves `*pos` past it. The buffers are our own encodings, so
/// a varint is never cut short; at the end of `buf` it stops with what it has.
pub fn get(buf: &[u8], pos: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    n
}

/// Reads the varint at `*pos` from bytes of unknown origin (a snapshot): `None` if it is cut
/// short, longer than 10 bytes or above `u64::MAX`. On success `*pos` moves past it.
#[inline]
pub fn get_checked(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // Most lengths are under 128: one byte, one branch.
    let b = *buf.get(*pos)?;
    if b < 0x80 {
        *pos += 1;
        return Some(u64::from(b));
    }
    get_checked_long(buf, pos)
}

/// [`get_checked`] past its one-byte case.
#[inline(never)]
fn get_checked_long(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos + i)?;
        if i == 9 && b > 1 {
            return None;
        }
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return Some(n);
        }
    }
    None
}

/// [`get_checked`] as a `usize`.
#[inline]
pub fn get_len(buf: &[u8], pos: &mut usize) -> Option<usize> {
    usize::try_from(get_checked(buf, pos)?).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_lengths() {
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            super::put(&mut b, n);
            assert_eq!(b.len(), super::len(n));
            let mut pos = 0;
            assert_eq!(super::get(&b, &mut pos), n);
            assert_eq!(pos, b.len());
        }
    }

    #[test]
    fn checked_reads_refuse_cut_and_overlong_varints() {
        let mut pos = 0;
        assert_eq!(super::get_checked(&[0x80, 0x01], &mut pos), Some(128));
        assert_eq!(pos, 2);
        assert_eq!(super::get_checked(&[0x80], &mut 0), None);
        assert_eq!(super::get_checked(&[0xff; 11], &mut 0), None);
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(super::get_checked(&max, &mut 0), Some(u64::MAX));
        max[9] = 0x02;
        assert_eq!(super::get_checked(&max, &mut 0), None);
    }
}
