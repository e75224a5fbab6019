//! The status page as the browser tests read it (tests/status_page.rs,
//! tests/status_databases.rs): a card's charts and top-queries table out of
//! Chromium's DOM, and what `/metrics` served at each poll while the charts
//! filled, to hold the one against the other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One poll as a scrape served it: the poll's time (the target's
/// `perfwatch_last_success_timestamp_seconds`, which is also the time of
/// the history point it made) and a value per chart line, keyed by the
/// line's `data-series` label.
pub type Served = (f64, BTreeMap<String, f64>);

/// The time of `target`'s last successful poll in a scrape: the time of
/// the history point that poll made.
pub fn poll_time(body: &str, target: &str) -> Option<f64> {
    super::value(
        body,
        "perfwatch_last_success_timestamp_seconds",
        &[("target", target)],
    )
}

/// Every poll's values, kept by a task scraping `/metrics` in the
/// background (see [`record_served`]).
pub struct ServedRecorder {
    polls: Arc<Mutex<BTreeMap<u64, Served>>>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Scrapes `/metrics` of the perfwatch at `addr` every 100 ms (polls come
/// every 500 ms, so each is seen) until [`ServedRecorder::stop`], keeping
/// what `read` takes from each scrape, one entry per poll.
pub fn record_served(
    addr: SocketAddr,
    read: impl Fn(&str) -> Option<Served> + Send + 'static,
) -> ServedRecorder {
    let polls: Arc<Mutex<BTreeMap<u64, Served>>> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let task = {
        let (polls, running) = (polls.clone(), running.clone());
        let (client, url) = (reqwest::Client::new(), format!("http://{addr}/metrics"));
        tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                if let Ok(r) = client.get(&url).send().await
                    && let Ok(body) = r.text().await
                    && let Some((t, values)) = read(&body)
                {
                    // Keyed by the millisecond: one entry per poll.
                    polls
                        .lock()
                        .unwrap()
                        .insert((t * 1000.0).round() as u64, (t, values));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    ServedRecorder {
        polls,
        running,
        task,
    }
}

impl ServedRecorder {
    /// Polls recorded so far.
    pub fn len(&self) -> usize {
        self.polls.lock().unwrap().len()
    }

    /// Stops scraping; every poll recorded, oldest first.
    pub async fn stop(self) -> Vec<Served> {
        self.running.store(false, Ordering::SeqCst);
        self.task.await.unwrap();
        let polls = self.polls.lock().unwrap();
        polls.values().cloned().collect()
    }
}

/// Asserts that the chart `lines` (`data-series` label → `data-points`)
/// draw what `/metrics` served: every point at the time of a recorded poll
/// has the value that poll served for its line (a point where the poll
/// served no such line fails too), every line a poll served is drawn, and
/// at least `min_matched` points, and 90 % of those in the recorded time
/// range, fell on a recorded poll. Returns the points matched.
#[track_caller]
pub fn assert_lines_served(
    what: &str,
    lines: &BTreeMap<String, Vec<(f64, f64)>>,
    served: &[Served],
    min_matched: usize,
) -> usize {
    let (Some(first), Some(last)) = (served.first(), served.last()) else {
        panic!("{what}: no poll recorded");
    };
    let (first, last) = (first.0, last.0);
    let served_labels: BTreeSet<&String> = served.iter().flat_map(|(_, v)| v.keys()).collect();
    let drawn: BTreeSet<&String> = lines.keys().collect();
    assert!(
        served_labels.is_subset(&drawn),
        "{what}: /metrics served {served_labels:?}, the chart draws {drawn:?}"
    );
    let (mut matched, mut in_range) = (0, 0);
    for (label, points) in lines {
        for (t, v) in points {
            if *t < first - 1e-3 || *t > last + 1e-3 {
                continue;
            }
            in_range += 1;
            let Some((_, values)) = served.iter().find(|(st, _)| (st - t).abs() < 1e-3) else {
                continue;
            };
            let s = values.get(label).unwrap_or_else(|| {
                panic!("{what}: at {t} the chart draws {label:?} = {v}, /metrics served {values:?}")
            });
            assert!(
                (s - v).abs() <= 1e-12 * s.abs().max(1.0),
                "{what}: at {t} the chart has {label:?} = {v}, /metrics served {s}"
            );
            matched += 1;
        }
    }
    assert!(
        matched >= min_matched && matched * 10 >= in_range * 9,
        "{what}: {matched} chart points ({in_range} in the polls' time range) matched one of {} polls",
        served.len()
    );
    matched
}

/// The `<article>` of a target's card.
pub fn card_html<'a>(dom: &'a str, target: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-target=\"{target}\""))?;
    let rest = &dom[start..];
    Some(&rest[..rest.find("</article>")?])
}

/// The `data-points` of every line of the chart `signal` on the card of
/// `target`, by the line's `data-series` label.
pub fn dom_lines(dom: &str, target: &str, signal: &str) -> BTreeMap<String, Vec<(f64, f64)>> {
    chart_lines(dom, target, signal).into_iter().collect()
}

/// The `data-points` of the first line of the chart `signal` on the card of
/// `target`.
pub fn dom_points(dom: &str, target: &str, signal: &str) -> Vec<(f64, f64)> {
    chart_lines(dom, target, signal)
        .into_iter()
        .next()
        .map(|(_, points)| points)
        .unwrap_or_default()
}

/// `(data-series, data-points)` of every line of a chart, in the page's order.
fn chart_lines(dom: &str, target: &str, signal: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let card = card_html(dom, target).unwrap_or_else(|| panic!("no card for {target} in {dom}"));
    let chart = card
        .split(&format!("data-signal=\"{signal}\""))
        .nth(1)
        .and_then(|r| r.split("</figure>").next())
        .unwrap_or_else(|| panic!("no {signal} chart on the {target} card: {card}"));
    let mut lines = Vec::new();
    for tag in chart.split('<').skip(1) {
        let head = tag.split('>').next().unwrap_or("");
        let Some(points) = attr(head, "data-points") else {
            continue;
        };
        let points = points
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (t, v) = p.split_once(':').unwrap_or_else(|| panic!("bad point {p}"));
                (t.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        lines.push((attr(head, "data-series").unwrap_or_default(), points));
    }
    lines
}

/// The value of attribute `name` in a tag's text (`tag a="x" b="y"`).
pub fn attr(head: &str, name: &str) -> Option<String> {
    let at = head.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(head[at..].split('"').next()?.to_owned())
}

/// One row of a card's top-queries table.
#[derive(Debug, Clone, PartialEq)]
pub struct TopRow {
    /// `data-db`.
    pub db: String,
    /// `data-fingerprint`: the class id `/api/slow-queries` gives.
    pub fingerprint: String,
    /// The text of the cell under the `count` header.
    pub count: String,
}

/// The rows of the top-queries table on the card of `target` (None when
/// the card has no table). Cells are found by their header's text, so
/// columns added beside `count` change nothing.
pub fn top_rows(dom: &str, target: &str) -> Option<Vec<TopRow>> {
    let card = card_html(dom, target)?;
    let table = card
        .split("<table class=\"top")
        .nth(1)?
        .split("</table>")
        .next()?;
    let headers: Vec<String> = elements(table, "th")
        .into_iter()
        .map(|c| cell_text(c, "</th>"))
        .collect();
    let count_at = headers
        .iter()
        .position(|h| h == "count")
        .unwrap_or_else(|| panic!("no count column among {headers:?}"));
    let rows = elements(table, "tr")
        .into_iter()
        .filter_map(|row| {
            let head = row.split('>').next().unwrap_or("");
            let fingerprint = attr(head, "data-fingerprint")?;
            let cells: Vec<String> = elements(row, "td")
                .into_iter()
                .map(|c| cell_text(c, "</td>"))
                .collect();
            Some(TopRow {
                db: attr(head, "data-db").unwrap_or_default(),
                fingerprint,
                count: cells.get(count_at).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Some(rows)
}

/// What follows each `<name` opening tag in `html` (not `<thead` for `th`).
fn elements<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.split(open.as_str())
        .skip(1)
        .filter(|rest| rest.starts_with(['>', ' ', '\n', '\t']))
        .collect()
}

/// The text of a cell (what follows its `<td`/`<th`, up to `close`), tags
/// removed.
fn cell_text(after_open: &str, close: &str) -> String {
    let inner = after_open
        .split_once('>')
        .map_or("", |(_, rest)| rest)
        .split(close)
        .next()
        .unwrap_or("");
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_owned()
}
