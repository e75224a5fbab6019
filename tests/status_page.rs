//! The status page (issue 17) in a real browser: perfwatch polls a
//! throwaway Redis, a throwaway PostgreSQL and the sample app every 500 ms;
//! headless Chromium (Debian package `chromium`; a missing binary fails the
//! test with the install hint) loads `/` at 1280 and 390 px. The hit-ratio
//! chart's data points are the values `/metrics` served at those times, no
//! card overlaps another at either width, and a Redis killed mid-test moves
//! its card to the top with its error.
//!
//! `PERFWATCH_STATUS_SCREENSHOTS=<dir>` also copies the two screenshots
//! there (scripts/status-screenshots.sh regenerates docs/ with it).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::chromium::{MIN_WINDOW_WIDTH, chromium, crop_png_width, framed, framed_dom, png_size};
use common::status::{
    Served, assert_lines_served, attr, card_html, dom_points, poll_time, record_served,
};
use common::{Perfwatch, blocking, config, hit_ratio_phase, start_pg, start_redis, value};
use perfwatch_testbench::SampleApp;

/// The two widths the page must be readable at, and a window tall enough
/// for the whole page.
const WIDE: (u32, u32) = (1280, 1800);
const PHONE: (u32, u32) = (390, 3600);

/// Redis lookups in the background with a hit share that changes every
/// round (so the chart's line moves), until `stop`.
fn workload(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut con) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
            return;
        };
        let _: Result<(), _> = redis::cmd("SET").arg("hot").arg("v").query(&mut con);
        let mut round = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let hits = 3 + round % 7;
            let mut pipe = redis::pipe();
            for _ in 0..hits {
                pipe.cmd("GET").arg("hot").ignore();
            }
            for i in 0..(10 - hits) {
                pipe.cmd("GET").arg(format!("cold:{round}:{i}")).ignore();
            }
            if pipe.query::<()>(&mut con).is_err() {
                return; // the server was killed
            }
            round += 1;
            std::thread::sleep(Duration::from_millis(150));
        }
    })
}

/// The cache target's 1m hit ratio in one scrape, as the chart's one line,
/// at the time of the poll that measured it.
fn served_ratio(body: &str) -> Option<Served> {
    let t = poll_time(body, "cache")?;
    let r = value(
        body,
        "perfwatch_cache_hit_ratio",
        &[("target", "cache"), ("window", "1m")],
    )?;
    Some((t, BTreeMap::from([(String::new(), r)])))
}

/// `data-target` of the first target card.
fn first_card(dom: &str) -> Option<&str> {
    dom.split("data-target=\"").nth(1)?.split('"').next()
}

/// A box `(x, y, width, height)` in CSS pixels.
type Rect = (f64, f64, f64, f64);

/// Every element with `class` among its classes, and its `data-rect`.
fn rects(dom: &str, class: &str) -> Vec<(String, Rect)> {
    let mut out = Vec::new();
    for tag in dom.split('<').skip(1) {
        let head = tag.split('>').next().unwrap_or("");
        let classes = attr(head, "class").unwrap_or_default();
        if !classes.split_whitespace().any(|c| c == class) {
            continue;
        }
        let Some(r) = attr(head, "data-rect") else {
            continue;
        };
        let n: Vec<f64> = r.split(',').map(|x| x.parse().unwrap()).collect();
        let name = attr(head, "data-target")
            .or_else(|| attr(head, "data-phase"))
            .or_else(|| attr(head, "data-signal"))
            .unwrap_or_default();
        out.push((name, (n[0], n[1], n[2], n[3])));
    }
    out
}

/// The area two boxes share.
fn shared(a: Rect, b: Rect) -> f64 {
    let w = (a.0 + a.2).min(b.0 + b.2) - a.0.max(b.0);
    let h = (a.1 + a.3).min(b.1 + b.3) - a.1.max(b.1);
    w.max(0.0) * h.max(0.0)
}

/// Pairs of boxes that overlap (by more than rounding).
fn overlaps(boxes: &[(String, Rect)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (na, a)) in boxes.iter().enumerate() {
        for (nb, b) in &boxes[i + 1..] {
            if shared(*a, *b) > 1.0 {
                out.push(format!("{na} {a:?} and {nb} {b:?}"));
            }
        }
    }
    out
}

/// The page's DOM with `#layout` (every card's and chart's box in
/// `data-rect`) at `window`; through an iframe when the window is narrower
/// than Chromium's.
fn measured_dom(url: &str, window: (u32, u32)) -> String {
    let url = format!("{url}#layout");
    if window.0 >= MIN_WINDOW_WIDTH {
        return chromium(&url, window, None);
    }
    let dump = chromium(&framed(&url, window), (MIN_WINDOW_WIDTH, window.1), None);
    framed_dom(&dump).unwrap_or_else(|| panic!("the framed page posted nothing: {dump}"))
}

/// Loads the page with `#layout` at `window`: asserts no two cards overlap,
/// every chart lies inside the page's width, nothing scrolls sideways, and
/// a phone-sized window has one column.
fn assert_layout(url: &str, window: (u32, u32)) -> String {
    let dom = measured_dom(url, window);
    let cards = rects(&dom, "card");
    assert!(
        cards.len() >= 4,
        "{window:?}: measured {} cards: {dom}",
        cards.len()
    );
    let bad = overlaps(&cards);
    assert!(bad.is_empty(), "{window:?}: overlapping cards: {bad:#?}");
    let charts = rects(&dom, "chart");
    assert!(!charts.is_empty(), "{window:?}: no chart measured");
    let viewport = attr(dom.split("<body").nth(1).unwrap_or(""), "data-viewport")
        .unwrap_or_else(|| panic!("no data-viewport: {dom}"));
    let (inner, scroll) = viewport.split_once(',').unwrap();
    let (inner, scroll): (f64, f64) = (inner.parse().unwrap(), scroll.parse().unwrap());
    assert_eq!(inner, window.0 as f64, "the window is {window:?}");
    assert!(
        scroll <= inner,
        "{window:?}: the page scrolls sideways ({scroll} > {inner})"
    );
    for (name, (x, _, w, _)) in &charts {
        assert!(
            *x >= 0.0 && x + w <= inner + 0.5,
            "{window:?}: chart {name} at x {x}..{} outside the page",
            x + w
        );
    }
    if window.0 < 600 {
        // One column: every card starts at the same x.
        let xs: Vec<f64> = cards.iter().map(|(_, r)| r.0).collect();
        assert!(
            xs.iter().all(|x| (x - xs[0]).abs() < 0.5),
            "{window:?}: more than one column: {cards:?}"
        );
    }
    dom
}

/// The measurement itself sees an overlap: the page's own script on two
/// cards placed over each other.
fn assert_layout_check_catches_an_overlap(page: &str) {
    let script = page
        .split("<script>")
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .expect("the page has its inline script");
    let measuring = script.replace("location.hash==='#layout'", "true");
    assert_ne!(measuring, script, "the script measures under #layout");
    let html = format!(
        "<html><body><div class=\"card\" data-target=\"a\" style=\"position:absolute;left:0;top:0;width:200px;height:100px\"></div>\
         <div class=\"card\" data-target=\"b\" style=\"position:absolute;left:150px;top:50px;width:200px;height:100px\"></div>\
         <script>{measuring}</script></body></html>"
    );
    let url = format!(
        "data:text/html,{}",
        html.replace('%', "%25").replace('#', "%23")
    );
    let dom = chromium(&url, WIDE, None);
    let cards = rects(&dom, "card");
    assert_eq!(cards.len(), 2, "{dom}");
    assert_eq!(overlaps(&cards).len(), 1, "{cards:?}");
}

/// A screenshot of `url` at `window` into `out`; through an iframe, cut to
/// the frame's width, when the window is narrower than Chromium's.
fn screenshot(url: &str, window: (u32, u32), out: &Path) {
    if window.0 >= MIN_WINDOW_WIDTH {
        chromium(url, window, Some(out));
        return;
    }
    let wide = out.with_extension("framed.png");
    chromium(
        &framed(url, window),
        (MIN_WINDOW_WIDTH, window.1),
        Some(&wide),
    );
    let png = crop_png_width(&std::fs::read(&wide).unwrap(), window.0)
        .unwrap_or_else(|e| panic!("{}: {e}", wide.display()));
    std::fs::write(out, png).unwrap();
}

/// Screenshots at both widths into `dir`: PNGs of the window's size, well
/// above the size of a blank page's screenshot taken the same way.
fn screenshots(url: &str, dir: &Path) {
    for (name, window) in [("status-1280.png", WIDE), ("status-390.png", PHONE)] {
        let out = dir.join(name);
        let blank = dir.join(format!("blank-{name}"));
        // #layout: no reload timer running while the screenshot is taken.
        screenshot(&format!("{url}#layout"), window, &out);
        screenshot("data:text/html,<html><body></body></html>", window, &blank);
        let png = std::fs::read(&out).unwrap();
        let blank_len = std::fs::read(&blank).unwrap().len();
        assert_eq!(png_size(&png), Ok(window), "{}", out.display());
        assert!(
            png.len() > 5 * blank_len,
            "{name} ({} bytes) is hardly larger than a blank page ({blank_len} bytes)",
            png.len()
        );
        eprintln!("screenshot: {} ({} bytes)", out.display(), png.len());
        if let Ok(keep) = std::env::var("PERFWATCH_STATUS_SCREENSHOTS") {
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&out, Path::new(&keep).join(name)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_charts_what_metrics_served_and_puts_a_dead_target_first() {
    let mut redis = start_redis(&[]);
    let pg = blocking(|| start_pg(&[])).await;
    let app = SampleApp::start(None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let toml = config(
        "interval = \"500ms\"\ntimeout = \"400ms\"",
        &format!(
            r#"[[redis]]
name = "cache"
url = "{redis}"
[[postgres]]
name = "db"
dsn = "{pg}"
[[http]]
name = "api"
url = "{health}"
kind = "health"
[[http]]
name = "app-pool"
url = "{pool}"
kind = "pool"
[[http]]
name = "report"
url = "{report}"
kind = "latency"
repeat = 2
{phase}"#,
            redis = redis.url(),
            pg = pg.dsn(),
            health = app.url("/health"),
            pool = app.url("/pool"),
            report = app.url("/report"),
            phase = hit_ratio_phase(
                "Pre-aggregated summary tables (<trip_summary>)",
                0.95,
                0.97,
                ""
            ),
        ),
    );
    let pw = Perfwatch::start(&toml).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = workload(redis.url(), stop.clone());

    // Every poll's hit ratio, as /metrics served it while the test runs.
    let served = record_served(pw.addr, served_ratio);

    // A few seconds of history for every target.
    pw.wait_for(Duration::from_secs(60), "every target up", |b| {
        ["cache", "db", "api", "app-pool", "report"]
            .iter()
            .all(|t| value(b, "perfwatch_target_up", &[("target", t)]) == Some(1.0))
            .then_some(())
    })
    .await;
    let wanted = 12;
    pw.wait_for(Duration::from_secs(60), "hit ratios served", |_| {
        (served.len() >= wanted).then_some(())
    })
    .await;

    let url = format!("http://{}/", pw.addr);
    let (status, page) = pw.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Pre-aggregated summary tables (&lt;trip_summary&gt;)")
            && !page.contains("<trip_summary>"),
        "the description is escaped"
    );
    assert!(
        page.contains("Recommended phase: phase2"),
        "the hit ratio is under 0.95, so phase2 is recommended, and why: {page}"
    );
    assert!(page.contains("cache_hit_ratio is "), "{page}");

    // The DOM's hit-ratio points are what /metrics served at those times.
    let dom = tokio::task::block_in_place(|| chromium(&url, WIDE, None));
    let served = served.stop().await;
    let lines = BTreeMap::from([(String::new(), dom_points(&dom, "cache", "hit_ratio"))]);
    let matched = assert_lines_served("the hit ratio", &lines, &served, wanted - 2);
    eprintln!("{matched} hit-ratio points matched /metrics");
    // The other targets' charts have data too.
    for (target, signal) in [
        ("cache", "ops"),
        ("db", "sessions"),
        ("db", "connection_saturation"),
        ("api", "health"),
        ("app-pool", "pool_saturation"),
        ("report", "latency"),
    ] {
        assert!(
            !dom_points(&dom, target, signal).is_empty(),
            "{target}: no {signal} points"
        );
    }

    // Layout at both widths, and screenshots.
    tokio::task::block_in_place(|| {
        assert_layout_check_catches_an_overlap(&page);
        assert_layout(&url, WIDE);
        assert_layout(&url, PHONE);
        let dir = tempfile::tempdir().unwrap();
        screenshots(&url, dir.path());
    });

    // The JSON API.
    let (status, history) = pw.get("/api/history?target=cache").await;
    assert_eq!(status, 200);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["targets"][0]["target"], "cache");
    assert!(
        history["targets"][0]["series"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["signal"] == "hit_ratio" && !s["points"].as_array().unwrap().is_empty()),
        "{history}"
    );
    assert_eq!(pw.get("/api/history?target=nope").await.0, 404);

    // Redis killed: its card goes to the top, with its error.
    stop.store(true, Ordering::SeqCst);
    redis.kill().unwrap();
    let _ = blocking(move || load.join()).await;
    pw.wait_up("cache", 0.0, Duration::from_secs(10)).await;
    let dom = tokio::task::block_in_place(|| chromium(&url, WIDE, None));
    assert_eq!(first_card(&dom), Some("cache"), "{dom}");
    let card = card_html(&dom, "cache").unwrap();
    assert!(
        card.contains("data-state=\"down\"") && card.contains("redis target \"cache\""),
        "the card says why: {card}"
    );
    let (_, status) = pw.get("/api/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["targets"][0]["target"], "cache", "{status}");
    assert_eq!(status["targets"][0]["state"], "down", "{status}");
    assert!(
        status["targets"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("redis target \"cache\"")),
        "{status}"
    );
    assert_eq!(
        status["phases"][0]["triggers"][0]["name"],
        "cache_hit_ratio"
    );
    pw.stop().await;
    drop(pg);
}

#[test]
fn the_overlap_check_sees_shared_area_and_ignores_touching_edges() {
    let a = ("a".to_owned(), (0.0, 0.0, 100.0, 100.0));
    let touching = ("b".to_owned(), (100.0, 0.0, 100.0, 100.0));
    let over = ("c".to_owned(), (50.0, 50.0, 100.0, 100.0));
    assert!(overlaps(&[a.clone(), touching]).is_empty());
    assert_eq!(overlaps(&[a, over]).len(), 1);
    let dom = r#"<div class="card x" data-target="t" data-rect="1.5,2,3,4"></div><figure class="chart" data-signal="ops" data-rect="0,0,1,1">"#;
    assert_eq!(
        rects(dom, "card"),
        vec![("t".to_owned(), (1.5, 2.0, 3.0, 4.0))]
    );
    assert_eq!(rects(dom, "chart").len(), 1);
}
