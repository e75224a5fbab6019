//! Headless Chromium (Debian package `chromium`) for the tests that look at
//! perfwatch's pages in a real browser (tests/demo.rs, tests/status_page.rs).
//! A missing binary fails the test with the install hint, never skips it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perfwatch_testbench::find_binary;

/// How long one Chromium run may take before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs headless Chromium with a fresh profile and a `width` × `height`
/// window: `--screenshot=<out>` or `--dump-dom`; returns stdout. Killed
/// after [`CHROMIUM_TIMEOUT`].
pub fn chromium(url: &str, (width, height): (u32, u32), screenshot: Option<&Path>) -> String {
    let bin = find_binary("chromium", "chromium").unwrap_or_else(|e| panic!("{e}"));
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        // Under the status page's 5 s reload: the DOM dumped is the page
        // loaded, not one half-way through a reload.
        "--virtual-time-budget=3000",
        // A `framed` data: page loads perfwatch from 127.0.0.1, which
        // Chromium's local-network checks would block. In a process of
        // its own (site isolation) the frame is sized asynchronously, and
        // its page can run, measure and post before it has a width.
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,IsolateOrigins,site-per-process",
        "--disable-site-isolation-trials",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={width},{height}"));
    match screenshot {
        Some(out) => cmd.arg(format!("--screenshot={}", out.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = cmd
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium on {url} still running after {CHROMIUM_TIMEOUT:?}, killed; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium on {url} failed ({status}); stderr:\n{}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    std::fs::read_to_string(&out_path).unwrap()
}

/// Width and height from a PNG's signature and IHDR chunk.
pub fn png_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE {
        return Err("no PNG signature".into());
    }
    if &bytes[12..16] != b"IHDR" {
        return Err("first chunk is not IHDR".into());
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Headless Chromium's window is never narrower than this (a smaller
/// `--window-size` is widened): narrower viewports are seen through an
/// iframe ([`framed`]).
pub const MIN_WINDOW_WIDTH: u32 = 500;

/// A `data:` page showing `url` in an iframe of `width` × `height` CSS
/// pixels at its top left, which writes whatever the framed page posts
/// (`postMessage`) into its body's `data-frame` attribute, so `--dump-dom`
/// of this page returns the framed page's DOM ([`framed_dom`]).
pub fn framed(url: &str, (width, height): (u32, u32)) -> String {
    let html = format!(
        "<html><body style=\"margin:0;background:#777\">\
         <iframe src=\"{url}\" style=\"display:block;border:0;width:{width}px;height:{height}px\"></iframe>\
         <script>addEventListener('message',function(e){{document.body.setAttribute('data-frame',e.data)}})</script>\
         </body></html>"
    );
    format!(
        "data:text/html,{}",
        html.replace('%', "%25").replace('#', "%23")
    )
}

/// The framed page's DOM from a [`framed`] page's dump, unescaped.
pub fn framed_dom(dump: &str) -> Option<String> {
    let at = dump.find("data-frame=\"")? + "data-frame=\"".len();
    let value = dump[at..].split('"').next()?;
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&"),
    )
}

/// The left `width` columns of an 8-bit RGB or RGBA PNG (what Chromium
/// writes), re-encoded: a screenshot of a [`framed`] page cut to the frame.
pub fn crop_png_width(png: &[u8], width: u32) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let (w, h) = png_size(png)?;
    let (depth, color) = (png[24], png[25]);
    let bpp = match (depth, color) {
        (8, 2) => 3,
        (8, 6) => 4,
        _ => {
            return Err(format!(
                "bit depth {depth}, color type {color}: not handled"
            ));
        }
    };
    if png[28] != 0 {
        return Err("interlaced PNG".into());
    }
    if width > w {
        return Err(format!("{width} is wider than the image ({w})"));
    }
    // The concatenated IDAT chunks.
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        if kind == b"IDAT" {
            idat.extend_from_slice(&png[at + 8..at + 8 + len]);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let stride = w as usize * bpp;
    if raw.len() != (stride + 1) * h as usize {
        return Err(format!("{} bytes of pixels for {w}x{h}", raw.len()));
    }
    // Undo the per-row filters (PNG spec, section 9).
    let mut prev = vec![0u8; stride];
    let mut out = Vec::with_capacity((width as usize * bpp + 1) * h as usize);
    for row in raw.chunks(stride + 1) {
        let (filter, data) = (row[0], &row[1..]);
        let mut cur = data.to_vec();
        for i in 0..stride {
            let a = if i >= bpp { cur[i - bpp] as i16 } else { 0 };
            let b = prev[i] as i16;
            let c = if i >= bpp { prev[i - bpp] as i16 } else { 0 };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => return Err(format!("unknown filter {f}")),
            };
            cur[i] = cur[i].wrapping_add(add as u8);
        }
        out.push(0);
        out.extend_from_slice(&cur[..width as usize * bpp]);
        prev = cur;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&out).map_err(|e| e.to_string())?;
    let data = z.finish().map_err(|e| e.to_string())?;
    let mut ihdr = png[16..29].to_vec();
    ihdr[..4].copy_from_slice(&width.to_be_bytes());
    let mut png_out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &data), (b"IEND", &[])] {
        png_out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = png_out.len();
        png_out.extend_from_slice(kind);
        png_out.extend_from_slice(body);
        let crc = crc32(&png_out[start..]);
        png_out.extend_from_slice(&crc.to_be_bytes());
    }
    Ok(png_out)
}

/// The CRC-32 of PNG chunks (ISO 3309, reflected, 0xedb88320).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= *b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
