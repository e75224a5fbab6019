//! Issue 16 in PostgreSQL's json and csv layouts (jsonlog, CloudNativePG,
//! Cloud SQL, csvlog): a statement longer than the cap is fingerprinted
//! whole as its line's pieces arrive, with the class a short line of it
//! gets, in bounded memory. One table a concern, a row a layout.

use std::io::Write;

use perfwatch_slowlog::fingerprint::{bytes_of_text, fingerprint, text_from_bytes};
use perfwatch_slowlog::postgres::{PgFormat, PgParser};
use perfwatch_slowlog::tail::{StartAt, Tailer};
use perfwatch_slowlog::{LogFormat, LogParser, SlowEvent};

/// The four layouts whose message is a quoted string.
const LAYOUTS: [PgFormat; 4] = [
    PgFormat::Json,
    PgFormat::Cnpg,
    PgFormat::CloudSql,
    PgFormat::Csv,
];

/// One log line (a csv record: maybe several lines) of `format` whose
/// message is `duration: {ms} ms  statement: {q}`, written as the server
/// writes it.
fn layout_line(format: PgFormat, ms: &str, q: &str) -> String {
    let msg = format!("duration: {ms} ms  statement: {q}");
    let json = |s: &str| serde_json::to_string(s).unwrap();
    match format {
        PgFormat::Json => format!(
            r#"{{"timestamp":"2024-01-01 10:00:00.123 UTC","user":"app","dbname":"shop","pid":42,"error_severity":"LOG","message":{},"backend_type":"client backend"}}"#,
            json(&msg)
        ),
        PgFormat::Cnpg => format!(
            r#"{{"level":"info","logger":"postgres","msg":"record","record":{{"user_name":"app","database_name":"shop","process_id":"42","error_severity":"LOG","message":{},"backend_type":"client backend"}}}}"#,
            json(&msg)
        ),
        // stderr's message: its further lines start with a TAB.
        PgFormat::CloudSql => format!(
            r#"{{"insertId":"1","textPayload":{},"timestamp":"2024-01-01T10:00:00.123Z"}}"#,
            json(&format!(
                "2024-01-01 10:00:00.123 UTC [42]: [3-1] db=shop,user=app LOG:  {}",
                msg.replace('\n', "\n\t")
            ))
        ),
        _ => format!(
            "2024-01-01 10:00:00.123 UTC,\"app\",\"shop\",42,\"h\",s,1,\"SELECT\",t,1/2,0,LOG,00000,\"{}\",,,,,,,,,\"psql\",\"client backend\",,0",
            msg.replace('"', "\"\"")
        ),
    }
}

/// Feeds `log` as the tailer hands it out: each line's first `cap` bytes,
/// then (`pieces`) the rest in pieces of `piece` bytes, or (not `pieces`)
/// nothing more of it, as [`Tailer::read`] does. Cut at bytes as the tailer
/// cuts (a character split in two comes as its bytes, escaped).
fn feed(p: &mut PgParser, log: &str, cap: usize, piece: usize, pieces: bool) -> Vec<SlowEvent> {
    let mut got = Vec::new();
    for line in log.lines() {
        let line = line.as_bytes();
        let first = cap.min(line.len());
        got.extend(p.line(&text_from_bytes(&line[..first])));
        if pieces {
            for rest in line[first..].chunks(piece) {
                got.extend(p.more(&text_from_bytes(rest)));
            }
        }
    }
    while let Some(e) = p.flush() {
        got.push(e);
    }
    got
}

/// An event as the tables compare it: (fingerprint, ms, truncated).
fn class(e: &SlowEvent) -> (String, f64, bool) {
    (fingerprint(&e.query), e.duration * 1000.0, e.truncated)
}

/// Like [`class`], but a truncated event shows the first `n` bytes of its
/// kept text instead (the class of a cut literal is not the statement's).
fn class_or_start(e: &SlowEvent, n: usize) -> (String, f64, bool) {
    let (class, ms, cut) = class(e);
    let shown = if cut { e.query[..n].to_owned() } else { class };
    (shown, ms, cut)
}

#[test]
fn long_updates_with_other_literals_make_one_class() {
    // (a) 20 UPDATEs, each longer than the cap, literals with quotes,
    // escapes, newlines and non-ASCII: one class, ending `where id=?`, none
    // truncated. (format, cap, piece size).
    let rows: Vec<(PgFormat, usize, usize)> = LAYOUTS
        .iter()
        .flat_map(|&f| [(f, 4096, 1000), (f, 16 * 1024, 64 * 1024)])
        .collect();
    for (format, cap, piece) in rows {
        let statements: Vec<String> = (0..20)
            .map(|i| {
                let body = format!("doc {i}: \"quoted\" é 😀\n").repeat(300 + i * 37);
                format!("UPDATE docs SET body='{body}' WHERE id={i}")
            })
            .collect();
        // pt-query-digest's class of each whole statement.
        for q in &statements {
            assert_eq!(fingerprint(q), "update docs set body=? where id=?");
        }
        let log: String = statements
            .iter()
            .enumerate()
            .map(|(i, q)| layout_line(format, &format!("{i}.500"), q) + "\n")
            .collect();
        let mut p = PgParser::new(format, None, cap).unwrap();
        let got = feed(&mut p, &log, cap, piece, true);
        assert_eq!(got.len(), 20, "{format:?} {cap}");
        let mut classes: Vec<String> = got.iter().map(|e| fingerprint(&e.query)).collect();
        classes.dedup();
        assert_eq!(
            classes,
            ["update docs set body=? where id=?"],
            "{format:?} {cap}"
        );
        for (i, e) in got.iter().enumerate() {
            assert!(!e.truncated, "{format:?} {cap}: event {i}");
            assert!(
                e.query.len() <= cap,
                "{format:?} {cap}: kept {}",
                e.query.len()
            );
            assert_eq!(e.duration * 1000.0, i as f64 + 0.5, "{format:?}");
            assert_eq!(
                (e.db.as_deref(), e.user.as_deref()),
                (Some("shop"), Some("app"))
            );
        }
        assert_eq!(p.unrecognized.lines, 0, "{format:?}");
    }
}

#[test]
fn long_in_lists_make_one_class() {
    // (b) IN lists of 2 000 to 20 000 items (the longest many times the
    // cap), split over csv lines too: one class.
    for format in LAYOUTS {
        let cap = 4096;
        let log: String = [2_000, 7_000, 20_000]
            .iter()
            .map(|&n| {
                let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
                layout_line(
                    format,
                    "3.000",
                    &format!("SELECT * FROM t\nWHERE id IN ({})", ids.join(",\n ")),
                ) + "\n"
            })
            .collect();
        let mut p = PgParser::new(format, None, cap).unwrap();
        let got: Vec<_> = feed(&mut p, &log, cap, 65_536, true)
            .iter()
            .map(class)
            .collect();
        let want = ("select * from t where id in(?+)".to_owned(), 3.0, false);
        assert_eq!(got, vec![want; 3], "{format:?}");
    }
}

#[test]
fn escapes_split_anywhere_give_the_event_of_the_uncut_line() {
    // (c) A line with every kind of escape, cut at the cap at each byte from
    // its message on, its rest in pieces of 1 to 3 bytes: the event of the
    // same line read whole. (format, where its message starts).
    let q = "select '\"a\" \\\\ b', 'é😀\ttab' from t where x = 'it''s'\nand y = 1";
    let rows = [
        (PgFormat::Json, "\"message\":\""),
        (PgFormat::Cnpg, "\"message\":\""),
        (PgFormat::CloudSql, "LOG:  "),
        (PgFormat::Csv, "00000,\""),
    ];
    for (format, message) in rows {
        let mut line = layout_line(format, "12.500", q);
        if format != PgFormat::Csv {
            // JSON's \u escapes, a surrogate pair among them.
            line = line.replace('é', "\\u00e9").replace('😀', "\\ud83d\\ude00");
        }
        let log = format!("{line}\n");
        // A character cut in two comes as its bytes: compared as bytes.
        let event = |e: &SlowEvent| {
            let mut e = e.clone();
            e.query = String::from_utf8(bytes_of_text(&e.query).into_owned()).unwrap();
            e
        };
        let mut whole = PgParser::new(format, None, 1 << 20).unwrap();
        let want: Vec<_> = feed(&mut whole, &log, 1 << 20, 1, true)
            .iter()
            .map(event)
            .collect();
        assert_eq!(want.len(), 1, "{format:?}");
        assert!(!want[0].truncated);
        // From the message on, and the statement within the cap (a cap
        // below it cuts the statement, truncated).
        let from = (line.find(message).unwrap() + message.len()).max(q.len() + 40);
        for cap in from..line.len() {
            if log.lines().any(|l| l.len() == cap) {
                // A line of exactly the cap looks cut (the tailer hands a
                // cut line as its first `cap` bytes): its record is closed
                // there, truncated, when no piece follows.
                continue;
            }
            for piece in 1..=3 {
                let mut p = PgParser::new(format, None, cap).unwrap();
                let got: Vec<_> = feed(&mut p, &log, cap, piece, true)
                    .iter()
                    .map(event)
                    .collect();
                assert_eq!(got, want, "{format:?} cut at {cap}, pieces of {piece}");
            }
        }
    }
}

#[test]
fn a_long_line_and_the_line_after_it() {
    // (d) A long line, with its rest in pieces or cut without it (as
    // `Tailer::read` hands it out), then a short line: both events right.
    // A cut line keeps its timing and says it is truncated (its kept text,
    // not its class, is compared: the class of a cut literal is not the
    // statement's). (pieces, long statement, events as (class or the kept
    // text's start, ms, truncated)).
    let with_newlines = format!(
        "UPDATE docs SET body='{}' WHERE id=7",
        "x\"y\n".repeat(5000)
    );
    let one_line = format!("UPDATE docs SET body='{}' WHERE id=7", "x".repeat(20_000));
    let update = "update docs set body=? where id=?";
    let rows = [
        (true, &with_newlines, (update, 12.5, false)),
        (true, &one_line, (update, 12.5, false)),
        (false, &one_line, ("UPDATE docs SET body='xxxx", 12.5, true)),
    ];
    for format in LAYOUTS {
        let cap = 4096;
        for (pieces, long, want) in &rows {
            let log = format!(
                "{}\n{}\n",
                layout_line(format, "12.500", long),
                layout_line(format, "1.000", "select 2")
            );
            let mut p = PgParser::new(format, None, cap).unwrap();
            let got: Vec<_> = feed(&mut p, &log, cap, 8192, *pieces)
                .iter()
                .map(|e| class_or_start(e, 26))
                .collect();
            let want = vec![
                (want.0.to_owned(), want.1, want.2),
                ("select ?".to_owned(), 1.0, false),
            ];
            assert_eq!(got, want, "{format:?} pieces: {pieces}");
        }
    }
}

#[test]
fn a_20_mb_statement_through_the_tailer_in_each_layout() {
    // End to end through a file: a 20 MB UPDATE, then a short statement;
    // what the parser keeps stays within the cap.
    const MB20: usize = 20 * 1024 * 1024;
    let cap = 64 * 1024;
    let formats = [
        (PgFormat::Json, LogFormat::PostgresJson),
        (PgFormat::Cnpg, LogFormat::PostgresCnpg),
        (PgFormat::CloudSql, LogFormat::PostgresCloudsql),
        (PgFormat::Csv, LogFormat::PostgresCsv),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (format, log_format) in formats {
        let path = dir.path().join(format!("{log_format}.log"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        // The statement's ends, around a literal written in chunks.
        let marker = "@@BODY@@";
        let line = layout_line(
            format,
            "20000.000",
            &format!("UPDATE docs SET body='{marker}' WHERE id=1"),
        );
        let (head, tail) = line.split_once(marker).unwrap();
        f.write_all(head.as_bytes()).unwrap();
        let chunk = "lorem ipsum dolor sit amet ".repeat(40_000);
        let mut written = 0;
        while written < MB20 {
            f.write_all(chunk.as_bytes()).unwrap();
            written += chunk.len();
        }
        writeln!(f, "{tail}").unwrap();
        writeln!(f, "{}", layout_line(format, "1.000", "select 2")).unwrap();
        drop(f);

        let mut parser = LogParser::new(log_format, None, cap).unwrap();
        let mut tailer = Tailer::new(path, StartAt::Beginning, None, cap);
        let mut got = Vec::new();
        tailer
            .read_pieces(usize::MAX, &mut |text, _, more| {
                got.extend(parser.piece(text, more));
            })
            .unwrap();
        while let Some(e) = parser.flush() {
            got.push(e);
        }
        assert_eq!(tailer.stats.long_lines, 1, "{format:?}");
        assert!(
            got.iter().all(|e| e.query.len() <= cap),
            "{format:?}: kept more than the cap"
        );
        let got: Vec<_> = got.iter().map(class).collect();
        assert_eq!(
            got,
            [
                (
                    "update docs set body=? where id=?".to_owned(),
                    20_000.0,
                    false
                ),
                ("select ?".to_owned(), 1.0, false),
            ],
            "{format:?}"
        );
    }
}

#[test]
fn long_csv_lines_that_are_no_record_do_not_swallow_the_next() {
    // A long csv line with a stray quote (garbage, or a record that lost its
    // end), its rest in pieces, then good records: those are counted, the
    // garbage is unrecognized. (log, events as (class, ms, truncated)).
    let good = layout_line(PgFormat::Csv, "1.000", "select 2");
    let garbage = format!("\"junk {}", "x,y".repeat(3000));
    let cut_record = format!(
        "{}\n",
        layout_line(
            PgFormat::Csv,
            "7.000",
            &format!("select '{}", "z".repeat(9000))
        )
        .split_once("\",,")
        .map_or("", |(head, _)| head)
    );
    let rows = [
        (
            format!("{garbage}\n{good}\n"),
            vec![("select ?".to_owned(), 1.0, false)],
            1,
        ),
        (
            format!("{cut_record}{good}\n{good}\n"),
            vec![
                ("select 'zzzzzzzz".to_owned(), 7.0, true),
                ("select ?".to_owned(), 1.0, false),
                ("select ?".to_owned(), 1.0, false),
            ],
            0,
        ),
    ];
    for (log, want, unrecognized) in rows {
        let mut p = PgParser::new(PgFormat::Csv, None, 4096).unwrap();
        let got: Vec<_> = feed(&mut p, &log, 4096, 1000, true)
            .iter()
            .map(|e| class_or_start(e, 16))
            .collect();
        assert_eq!(got, want, "{log:.80}");
        assert_eq!(p.unrecognized.lines, unrecognized, "{log:.80}");
    }
}
