//! Synthetic traffic for the end-to-end test and `perfwatch-demo`: a cache
//! workload with warm and cold phases, and a database workload with index
//! reads, full scans, slow statements and a growing table, plus the schemas
//! both run against.
//!
//! Everything here runs on plain threads with the harness's synchronous
//! clients, so a test or the demo starts it from any context and stops it by
//! dropping it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{HarnessError, MariaDbServer, PostgresServer};

/// PostgreSQL schema (database `app`): a used index (`trip_driver_idx`), an
/// unused one (`trip_note_idx`), and a table read only by sequential scans
/// (`event`, a missing-index candidate). `trip` is the table that grows;
/// `trip_summary` is phase 3's pre-computed summary, which [`DbWorkload`]
/// refreshes every tick (the example config's job-freshness query reads its
/// `computed_at`).
pub const PG_SCHEMA: &str = "
CREATE TABLE trip_summary (day date PRIMARY KEY, trips bigint NOT NULL, computed_at timestamptz NOT NULL);
INSERT INTO trip_summary VALUES (current_date, 5000, now());
CREATE TABLE trip (id bigint PRIMARY KEY, driver_id int NOT NULL, note text NOT NULL);
CREATE INDEX trip_driver_idx ON trip (driver_id);
CREATE INDEX trip_note_idx ON trip (note);
CREATE TABLE event (id bigint PRIMARY KEY, kind text NOT NULL);
INSERT INTO trip SELECT g, g % 50, 'n' || g FROM generate_series(1, 5000) g;
INSERT INTO event SELECT g, CASE WHEN g % 100 = 0 THEN 'x' ELSE 'y' END FROM generate_series(1, 5000) g;
ANALYZE;
";

/// Index scans on `trip_driver_idx` (sequential scans off), then sequential
/// scans of `event`: gives the index-usage verdicts something to judge.
pub fn pg_index_traffic() -> String {
    let mut w = String::from("SET enable_seqscan = off;\n");
    for i in 0..20 {
        w.push_str(&format!(
            "SELECT count(*) FROM trip WHERE driver_id = {i};\n"
        ));
    }
    w.push_str("RESET enable_seqscan;\n");
    for _ in 0..20 {
        w.push_str(PG_FULL_SCAN);
        w.push('\n');
    }
    w
}

/// A sequential scan of `event` (no index on `kind`).
pub const PG_FULL_SCAN: &str = "SELECT count(*) FROM event WHERE kind = 'x';";

/// MariaDB schema (database `app`): a used index, unused ones, a redundant
/// one, and a table read by full scans. `trip` is the table that grows;
/// its `fare` has no index (the report filtering on it gets index advice).
pub const MARIADB_SCHEMA: &str = "CREATE DATABASE app; USE app;
CREATE TABLE driver (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100), UNIQUE KEY uq_email (email)) ENGINE=InnoDB;
CREATE TABLE trip (id INT PRIMARY KEY AUTO_INCREMENT, driver_id INT, start_time INT, status INT, note VARCHAR(50), fare INT,
  KEY idx_start (start_time), KEY idx_note (note), KEY idx_status (status), KEY idx_status_start (status, start_time),
  CONSTRAINT fk_driver FOREIGN KEY (driver_id) REFERENCES driver (id)) ENGINE=InnoDB;
INSERT INTO driver (email) SELECT CONCAT('d', seq, '@x') FROM seq_1_to_10;
INSERT INTO trip (driver_id, start_time, status, note) SELECT 1 + seq % 10, seq, seq % 3, 'n' FROM seq_1_to_2000;
ANALYZE TABLE driver, trip;";

/// Reads through `idx_start`.
pub const MARIADB_INDEX_READS: &str =
    "USE app; SELECT COUNT(*) FROM trip WHERE start_time BETWEEN 10 AND 20;";

/// A full scan of `trip` (the expression defeats every index).
pub const MARIADB_FULL_SCAN: &str =
    "USE app; SELECT COUNT(*) FROM trip WHERE status + 0 = 1 AND note <> 'zzz';";

/// How long the database workload's report statement runs (server-side
/// sleep): above the demo's slow-log thresholds (10 ms) without burning CPU.
pub const REPORT_COST: Duration = Duration::from_millis(50);

/// What the cache workload does; the lookups per 100 ms tick depend on the
/// target (see [`CacheTarget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Mostly hot keys: hit ratio 0.95.
    Warm = 0,
    /// Mostly keys never seen before: hit ratio well below 0.7.
    Cold = 1,
    /// Hot keys only, at a high rate: outweighs cold lookups still in a
    /// sliding window.
    Recover = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::Warm,
            1 => Mode::Cold,
            _ => Mode::Recover,
        }
    }

    /// The mode's name as the demo's control endpoint spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Warm => "warm",
            Mode::Cold => "cold",
            Mode::Recover => "recover",
        }
    }
}

/// The workload's current mode, shared with whoever changes it (the test,
/// the demo's phase timer, the sample app's `POST /demo/<mode>`).
///
/// `auto` says whether a timer may still flip it: a mode forced by hand
/// clears it.
#[derive(Clone, Debug)]
pub struct ModeSwitch {
    mode: Arc<AtomicU8>,
    auto: Arc<AtomicBool>,
}

impl ModeSwitch {
    /// Starts in `mode`, with `auto` on.
    pub fn new(mode: Mode) -> Self {
        ModeSwitch {
            mode: Arc::new(AtomicU8::new(mode as u8)),
            auto: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The current mode.
    pub fn get(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    /// Sets the mode (keeps `auto` as it is).
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Whether a timer may flip the mode.
    pub fn is_auto(&self) -> bool {
        self.auto.load(Ordering::SeqCst)
    }

    /// Turns the timer's flipping on or off.
    pub fn set_auto(&self, auto: bool) {
        self.auto.store(auto, Ordering::SeqCst);
    }
}

/// Where the cache workload sends its lookups.
#[derive(Clone, Debug)]
pub enum CacheTarget {
    /// Pipelined `GET`s straight on a Redis (`redis://` URL): one hot key,
    /// misses on keys that never exist. Warm: 950 hits and 50 misses a
    /// second; cold: 1 000 hits and 9 000 misses (ten times the warm rate,
    /// so it dominates a sliding window within seconds); recover: 50 000
    /// hits.
    Redis(String),
    /// `GET /api/analytics/bad-days?driver=N` on a [`SampleApp`](super::SampleApp)
    /// with backends (cache-aside: a miss is a PostgreSQL query and a `SET`).
    /// Warm: 19 requests on 20 hot drivers and 1 new driver per tick; cold:
    /// 3 hot and 5 new; recover: 40 hot.
    App(std::net::SocketAddr),
}

impl CacheTarget {
    fn per_tick(&self, mode: Mode) -> (usize, usize) {
        match (self, mode) {
            (CacheTarget::Redis(_), Mode::Warm) => (95, 5),
            (CacheTarget::Redis(_), Mode::Cold) => (100, 900),
            (CacheTarget::Redis(_), Mode::Recover) => (5000, 0),
            (CacheTarget::App(_), Mode::Warm) => (19, 1),
            (CacheTarget::App(_), Mode::Cold) => (3, 5),
            (CacheTarget::App(_), Mode::Recover) => (40, 0),
        }
    }
}

/// A thread doing cache lookups every 100 ms, continuously (perfwatch's
/// ratio is over a sliding window of poll history). Stops when dropped.
pub struct CacheWorkload {
    switch: ModeSwitch,
    thread: LoopThread,
}

impl CacheWorkload {
    /// Starts in `mode`.
    pub fn start(target: CacheTarget, mode: Mode) -> Self {
        Self::with_switch(target, ModeSwitch::new(mode))
    }

    /// Starts in whatever mode `switch` holds, following its changes.
    pub fn with_switch(target: CacheTarget, switch: ModeSwitch) -> Self {
        let m = switch.clone();
        let thread = LoopThread::spawn(move |stop| match &target {
            CacheTarget::Redis(url) => redis_lookups(&target, url, &m, stop),
            CacheTarget::App(addr) => app_lookups(&target, addr.port(), &m, stop),
        });
        CacheWorkload { switch, thread }
    }

    /// Changes the mode.
    pub fn set(&self, mode: Mode) {
        self.switch.set(mode);
    }

    /// The mode switch, for others to flip.
    pub fn switch(&self) -> ModeSwitch {
        self.switch.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.thread.stop();
    }
}

/// A workload's thread: it runs until its stop flag is set, which
/// [`LoopThread::stop`] does and waits for, and dropping does without
/// waiting.
struct LoopThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopThread {
    /// Runs `body` on a new thread; `body` returns once the flag it is
    /// given is set.
    fn spawn(body: impl FnOnce(&AtomicBool) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || body(&flag));
        LoopThread {
            stop,
            thread: Some(thread),
        }
    }

    /// Sets the stop flag and waits for the thread.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The hot key of [`CacheTarget::Redis`].
const HOT_KEY: &str = "e2e:hot";

fn redis_lookups(target: &CacheTarget, url: &str, mode: &ModeSwitch, stop: &AtomicBool) {
    let Ok(mut con) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
        tracing::error!("cache workload cannot connect to redis");
        return;
    };
    // Fails with OOM on a full noeviction Redis, where the caller has set
    // the key already.
    let _: redis::RedisResult<()> = redis::cmd("SET").arg(HOT_KEY).arg("v").query(&mut con);
    let mut miss = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let (hits, misses) = target.per_tick(mode.get());
        let mut pipe = redis::pipe();
        for _ in 0..hits {
            pipe.cmd("GET").arg(HOT_KEY).ignore();
        }
        for _ in 0..misses {
            miss += 1;
            pipe.cmd("GET").arg(format!("e2e:cold:{miss}")).ignore();
        }
        // A failed round (Redis killed) just ends the workload.
        if pipe.query::<()>(&mut con).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Hot drivers of [`CacheTarget::App`]; new drivers count up from
/// [`FIRST_COLD_DRIVER`], so they are never cached yet.
const HOT_DRIVERS: u64 = 20;
const FIRST_COLD_DRIVER: u64 = 1_000_000;

fn app_lookups(target: &CacheTarget, port: u16, mode: &ModeSwitch, stop: &AtomicBool) {
    let mut next_cold = FIRST_COLD_DRIVER;
    let mut hot = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let (hits, misses) = target.per_tick(mode.get());
        let mut drivers = Vec::with_capacity(hits + misses);
        for _ in 0..hits {
            hot = (hot + 1) % HOT_DRIVERS;
            drivers.push(hot);
        }
        for _ in 0..misses {
            next_cold += 1;
            drivers.push(next_cold);
        }
        for driver in drivers {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            // Errors (the app stopping first at shutdown) are not the
            // workload's business: the app's health and latency show them.
            let _ = super::prometheus::http_request(
                "sample-app",
                port,
                "GET",
                &format!("/api/analytics/bad-days?driver={driver}"),
                Duration::from_secs(5),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seeds prefixed keys (with and without TTL), then writes 1 KiB values
/// until Redis refuses with OOM (it must run with `maxmemory` and
/// `noeviction`).
pub fn fill_redis_until_oom(url: &str) -> Result<(), HarnessError> {
    let fail = |reply: String| HarnessError::BadReply {
        server: "redis-server",
        request: "filling until OOM".into(),
        reply,
    };
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .map_err(|e| fail(e.to_string()))?;
    let mut pipe = redis::pipe();
    pipe.cmd("SET").arg(HOT_KEY).arg("v").ignore();
    for i in 0..200 {
        pipe.cmd("SET")
            .arg(format!("bad_days:{i}"))
            .arg("v")
            .arg("EX")
            .arg(3600)
            .ignore();
        pipe.cmd("SET")
            .arg(format!("response_cache:{i}"))
            .arg("v")
            .ignore();
    }
    pipe.query::<()>(&mut con)
        .map_err(|e| fail(e.to_string()))?;
    let blob = "x".repeat(1024);
    for i in 0..100_000 {
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("blob:{i}"))
            .arg(&blob)
            .query(&mut con);
        match r {
            Ok(()) => {}
            Err(e) if e.to_string().contains("OOM") => return Ok(()),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    Err(fail(
        "never refused a write with OOM: is maxmemory set with noeviction?".into(),
    ))
}

/// Creates database `app` with [`PG_SCHEMA`] and runs
/// [`pg_index_traffic`] once.
pub fn seed_postgres(pg: &PostgresServer) -> Result<(), HarnessError> {
    pg.create_database("app")?;
    pg.psql_in("app", PG_SCHEMA)?;
    pg.psql_in("app", &pg_index_traffic()).map(drop)
}

/// Runs [`MARIADB_SCHEMA`] (creating database `app`), one index read and
/// three full scans.
pub fn seed_mariadb(db: &MariaDbServer) -> Result<(), HarnessError> {
    db.sql(MARIADB_SCHEMA)?;
    db.sql(MARIADB_INDEX_READS)?;
    for _ in 0..3 {
        db.sql(MARIADB_FULL_SCAN)?;
    }
    Ok(())
}

/// Rows each tick of [`DbWorkload`] adds to each `trip` table.
pub const ROWS_PER_TICK: u64 = 20;

/// A thread that, every `tick`, on each database seeded with
/// [`seed_postgres`] / [`seed_mariadb`]: adds [`ROWS_PER_TICK`] rows to
/// `trip` (the growing table), runs a full scan (keeps the missing-index
/// candidates' counters moving) and a report that takes [`REPORT_COST`]
/// (a slow-log entry above a 10 ms threshold; on MariaDB it reads `trip`
/// whole on its unindexed `fare`); on PostgreSQL also a report as slow
/// that reads `event` whole on its unindexed `kind`. Both get index advice
/// where perfwatch plans them. Stops when dropped.
pub struct DbWorkload {
    ticks: Arc<AtomicU64>,
    thread: LoopThread,
}

impl DbWorkload {
    /// Starts on whichever databases are given.
    pub fn start(
        pg: Option<Arc<PostgresServer>>,
        mariadb: Option<Arc<MariaDbServer>>,
        tick: Duration,
    ) -> Self {
        let ticks = Arc::new(AtomicU64::new(0));
        let t = ticks.clone();
        let thread = LoopThread::spawn(move |s| {
            let cost = REPORT_COST.as_secs_f64();
            // PostgreSQL ids continue after the seeded 5 000 rows.
            let mut next_id = 5_001u64;
            while !s.load(Ordering::SeqCst) {
                // Errors (a server stopped by a fault test, or first at
                // shutdown) are not the workload's business: perfwatch
                // reports the target down.
                if let Some(pg) = &pg {
                    let end = next_id + ROWS_PER_TICK - 1;
                    let _ = pg.psql_in(
                        "app",
                        &format!(
                            "INSERT INTO trip SELECT g, g % 50, 'n' || g FROM generate_series({next_id}, {end}) g;\n\
                             UPDATE trip_summary SET trips = trips + {ROWS_PER_TICK}, computed_at = now();\n\
                             {PG_FULL_SCAN}\n\
                             SELECT count(*) FROM trip, pg_sleep({cost}) WHERE driver_id = 7;\n\
                             SELECT count(*) FROM event, pg_sleep({cost}) WHERE kind = 'x';"
                        ),
                    );
                    next_id = end + 1;
                }
                if let Some(db) = &mariadb {
                    let _ = db.sql(&format!(
                        "USE app; INSERT INTO trip (driver_id, start_time, status, note) \
                         SELECT 1 + seq % 10, seq, seq % 3, 'n' FROM seq_1_to_{ROWS_PER_TICK};\n\
                         {}\nSELECT SLEEP({cost}), COUNT(*) FROM trip WHERE fare = 7;",
                        MARIADB_FULL_SCAN.trim_start_matches("USE app; ")
                    ));
                }
                t.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(tick);
            }
        });
        DbWorkload { ticks, thread }
    }

    /// Ticks done so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst)
    }

    /// Stops the thread and waits for its current tick.
    pub fn stop(&mut self) {
        self.thread.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_is_above_0_9_and_cold_below_0_7_for_both_targets() {
        let targets = [
            CacheTarget::Redis("redis://127.0.0.1:1/0".into()),
            CacheTarget::App("127.0.0.1:1".parse().unwrap()),
        ];
        for t in &targets {
            let ratio = |m| {
                let (h, miss) = t.per_tick(m);
                h as f64 / (h + miss) as f64
            };
            assert!(ratio(Mode::Warm) > 0.9, "{t:?}");
            assert!(ratio(Mode::Cold) < 0.7, "{t:?}");
            assert_eq!(ratio(Mode::Recover), 1.0, "{t:?}");
        }
    }

    #[test]
    fn switch_keeps_mode_and_auto_apart() {
        let s = ModeSwitch::new(Mode::Warm);
        assert!(s.is_auto());
        s.set(Mode::Cold);
        s.set_auto(false);
        let other = s.clone();
        assert_eq!(other.get(), Mode::Cold);
        assert!(!other.is_auto());
        assert_eq!(Mode::Recover.name(), "recover");
    }
}
