//! LOLWUT (Redis's `lolwut.c`): a piece of computer art per Redis version. Redis 7.0 itself
//! only prints its version; `VERSION 5` draws Georg Nees's *Schotter* in Braille characters
//! and `VERSION 6` a skyline in the four grays of a terminal, both with fresh randomness on
//! every call, as in Redis.

use rand::Rng;

use super::args;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx};
use crate::server::listener::REDIS_VERSION;

pub(crate) const COMMANDS: &[CommandSpec] =
    &[CommandSpec::new("lolwut", -1, READONLY | FAST, 0, 0, 0, lolwut)];

/// ```text
/// LOLWUT [VERSION version] [argument ...]
/// ```
/// The arguments after VERSION belong to the version's drawing: `5 [columns]
/// [squares-per-row] [squares-per-col]`, `6 [columns] [rows]`. Like Redis, the version is
/// read as a C `unsigned int`, so only values that wrap to 5 or 6 pick a drawing.
fn lolwut(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> CmdResult {
    let (version, rest) = if argv.len() >= 3 && args::is(argv[1], "version") {
        (Some(args::int(argv[2])? as u32), &argv[3..])
    } else {
        (None, &argv[1..])
    };
    let text = match version {
        Some(5) => schotter(ctx, rest)?,
        Some(6) => skyline(ctx, rest)?,
        _ => format!("Redis ver. {REDIS_VERSION}\n").into_bytes(),
    };
    ctx.out.verbatim("txt", &text);
    Ok(())
}

/// The numeric arguments of a drawing, each clamped to `1..=max` after parsing as Redis does.
fn sizes<const N: usize>(
    rest: &[&[u8]],
    defaults: [i64; N],
    max: [i64; N],
) -> Result<[i64; N], CmdError> {
    let mut out = defaults;
    for (i, v) in out.iter_mut().enumerate() {
        if let Some(a) = rest.get(i) {
            *v = args::int(a)?;
        }
        *v = (*v).clamp(1, max[i]);
    }
    Ok(out)
}

/// C's `rand()`: 0 to 2^31 - 1.
fn rand31(rng: &mut impl Rng) -> i64 {
    i64::from(rng.gen_range(0..=i32::MAX as u32))
}

/// A grid of pixels with a color each; writes outside it are ignored, reads give 0.
struct Canvas {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i64, height: i64, color: u8) -> Canvas {
        Canvas { width, height, pixels: vec![color; (width * height) as usize] }
    }

    fn set(&mut self, x: i64, y: i64, color: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize] = color;
        }
    }

    fn get(&self, x: i64, y: i64) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line.
    fn line(&mut self, (mut x1, mut y1): (i64, i64), (x2, y2): (i64, i64)) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, 1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), turned by `angle`: its corners lie on the
    /// circle through them, a quarter turn apart.
    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32) {
        let r = f64::from((size / std::f32::consts::SQRT_2).round());
        let mut k = std::f64::consts::FRAC_PI_4 + f64::from(angle);
        let mut corners = [(0, 0); 4];
        for c in &mut corners {
            *c = ((k.sin() * r + x as f64).round() as i64, (k.cos() * r + y as f64).round() as i64);
            k += std::f64::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(corners[j], corners[(j + 1) % 4]);
        }
    }
}

/// LOLWUT 5: rows of squares that grow more disordered downwards, rendered as Braille
/// characters (2x4 pixels each).
fn schotter(ctx: &mut Ctx<'_>, rest: &[&[u8]]) -> Result<Vec<u8>, CmdError> {
    let [cols, per_row, per_col] = sizes(rest, [66, 8, 12], [1000, 200, 200])?;
    let rng = &mut ctx.srv.rng;
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i64 + padding * 2;
    let mut canvas = Canvas::new(width, height, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0) as i64 + padding;
            let mut sy = (y as f32 * side + side / 2.0) as i64 + padding;
            let mut angle = 0.0f32;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in &mut r {
                    *v = rand31(rng) as f32 / i32::MAX as f32 / per_col as f32 * y as f32;
                }
                for v in &mut r {
                    if rand31(rng) % 2 == 1 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                // C adds a float to an int and truncates the sum.
                sx = (sx as f32 + r[1] * side / 3.0) as i64;
                sy = (sy as f32 + r[2] * side / 3.0) as i64;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    let mut text = braille(&canvas);
    text.extend_from_slice(
        format!("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n")
            .as_bytes(),
    );
    Ok(text)
}

/// The canvas as Braille characters: each 2x4 block of pixels is one character, whose dots
/// (bits) are numbered down the left column, then down the right one, the bottom row last.
fn braille(canvas: &Canvas) -> Vec<u8> {
    const DOTS: [(i64, i64); 8] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)];
    let mut text = Vec::new();
    for y in (0..canvas.height).step_by(4) {
        for x in (0..canvas.width).step_by(2) {
            let mut bits = 0u32;
            for (bit, (dx, dy)) in DOTS.iter().enumerate() {
                if canvas.get(x + dx, y + dy) != 0 {
                    bits |= 1 << bit;
                }
            }
            let c = char::from_u32(0x2800 + bits).unwrap_or(' ');
            let mut buf = [0u8; 4];
            text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// One building of the skyline, standing on the bottom row.
struct Skyscraper {
    xoff: i64,
    width: i64,
    height: i64,
    windows: bool,
    color: u8,
}

/// Draws a building: its roof two pixels narrower on each side, and with `windows`, a grid
/// of two-pixel-wide windows in a random gray other than the wall's.
fn skyscraper(canvas: &mut Canvas, s: &Skyscraper, rng: &mut impl Rng) {
    let start = canvas.height - 1;
    let end = start - s.height + 1;
    for y in (end..=start).rev() {
        for x in s.xoff..s.xoff + s.width {
            if y == end && (x <= s.xoff + 1 || x >= s.xoff + s.width - 2) {
                continue;
            }
            let mut color = s.color;
            let inner = x > s.xoff + 1 && x < s.xoff + s.width - 2 && y > end + 1 && y < start - 1;
            if s.windows && inner {
                let (relx, rely) = (x - (s.xoff + 1), y - (end + 1));
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = 1 + (rand31(rng) % 2) as u8;
                        if color != s.color {
                            break;
                        }
                    }
                    // The second pixel of a window takes the first one's color.
                    if relx % 2 != 0 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
    }
}

/// LOLWUT 6: a city skyline in the style of 8-bit games' parallax backgrounds: two rows of
/// gray buildings behind, black ones with lit windows in front, on a white sky.
fn skyline(ctx: &mut Ctx<'_>, rest: &[&[u8]]) -> Result<Vec<u8>, CmdError> {
    let [cols, rows] = sizes(rest, [80, 20], [1000, 1000])?;
    let rng = &mut ctx.srv.rng;
    let mut canvas = Canvas::new(cols, rows, 3);
    let h = canvas.height;
    // The lighter gray first, so that it stays behind.
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand31(rng) % 8;
            let width = 10 + rand31(rng) % 9;
            // `rand() % h / 2` in Redis: the remainder is halved, not the height.
            let height = if color == 2 {
                h / 2 + rand31(rng) % h / 2
            } else {
                h / 2 + rand31(rng) % h / 3
            };
            let s = Skyscraper { xoff: offset, width, height, windows: false, color };
            skyscraper(&mut canvas, &s, rng);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand31(rng) % 8;
        let mut width = 5 + rand31(rng) % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + rand31(rng) % h / 2;
        let s = Skyscraper { xoff: offset, width, height, windows: true, color: 0 };
        skyscraper(&mut canvas, &s, rng);
        offset += width + 5;
    }
    let mut text = Vec::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            // Foreground and background both set: terminals then agree on the shade.
            let escape = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.extend_from_slice(format!("\x1b[{escape} \x1b[0m").as_bytes());
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text.extend_from_slice(
        format!(
            "\nDedicated to the 8 bit game developers of past and present.\nOriginal 8 bit image \
             from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n"
        )
        .as_bytes(),
    );
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like Redis, every row of characters ends in a newline unless its first pixel row is
    /// the canvas's last one (which a height that is a multiple of 4 never hits).
    #[test]
    fn braille_dots_follow_unicode_numbering() {
        let mut c = Canvas::new(2, 4, 0);
        assert_eq!(String::from_utf8(braille(&c)).unwrap(), "\u{2800}\n");
        c.set(0, 0, 1);
        c.set(1, 3, 1);
        assert_eq!(String::from_utf8(braille(&c)).unwrap(), "\u{2881}\n");
        let c = Canvas::new(4, 1, 1);
        assert_eq!(String::from_utf8(braille(&c)).unwrap(), "\u{2809}\u{2809}");
    }

    #[test]
    fn lines_and_squares_stay_on_the_canvas() {
        let mut c = Canvas::new(10, 10, 0);
        c.line((0, 0), (9, 9));
        assert!((0..10).all(|i| c.get(i, i) == 1));
        c.square(100, 100, 50.0, 1.0);
        c.square(5, 5, 4.0, 0.0);
        assert_eq!(c.get(-1, 0), 0);
    }
}
