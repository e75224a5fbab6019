//! End to end: a real Redis whose hit ratio falls below 0.70 activates the
//! phase trigger after `for`, and recovery past `clear_above` clears it; a
//! Celery queue backing up activates the example's phase 3 health trigger,
//! which never recommends phase 3.

mod common;

use std::time::Duration;

use common::{Expected, Perfwatch, assert_value, assert_values, blocking, hit_ratio_phase, value};
use perfwatch_testbench::RedisServer;

fn lookups(url: String, hits: usize, misses: usize) -> impl FnOnce() + Send + 'static {
    move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("SET")
            .arg("hot")
            .arg("v")
            .query(&mut con)
            .unwrap();
        let mut pipe = redis::pipe();
        for _ in 0..hits {
            pipe.cmd("GET").arg("hot").ignore();
        }
        for i in 0..misses {
            pipe.cmd("GET").arg(format!("cold:{i}")).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
}

#[tokio::test]
async fn hit_ratio_phase_trigger_activates_after_for_and_clears_with_hysteresis() {
    let redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let toml = format!(
        r#"[global]
interval = "300ms"
timeout = "200ms"
[[redis]]
name = "cache"
url = "{}"
{}"#,
        redis.url(),
        hit_ratio_phase(
            "Pre-aggregated summary tables (trip_summary)",
            0.70,
            0.75,
            "for = \"2s\""
        )
    );
    let pw = Perfwatch::start(&toml).await;
    let l = [("phase", "phase2"), ("trigger", "cache_hit_ratio")];
    // No lookups yet: the ratio is absent, so the trigger has no data.
    pw.wait_value(
        Duration::from_secs(5),
        "perfwatch_phase_trigger_no_data",
        &l,
        1.0,
    )
    .await;
    // 1 hit : 9 misses → ratio 0.1.
    blocking(lookups(redis.url(), 10, 90)).await;
    let body = pw
        .wait_until(Duration::from_secs(5), "value below threshold", |b| {
            value(b, "perfwatch_phase_trigger_value", &l).is_some_and(|v| v < 0.7)
        })
        .await;
    assert_eq!(
        value(&body, "perfwatch_phase_trigger_active", &l),
        Some(0.0),
        "not before `for`"
    );
    let active = "perfwatch_phase_trigger_active";
    let (_, took) = common::timed(pw.wait_value(Duration::from_secs(8), active, &l, 1.0)).await;
    assert!(
        took >= Duration::from_millis(1200),
        "activated after only {took:?}"
    );
    let body = pw.scrape().await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("perfwatch_phase_active", &[("phase", "phase2")], Some(1.0)),
        ("perfwatch_phase_recommended", &[], Some(1.0)),
    ];
    assert_values(&body, wanted);
    assert!(body.contains("description=\"Pre-aggregated summary tables (trip_summary)\""));
    let (_, page) = pw.get("/").await;
    assert!(page.contains("phase2") && page.contains("ACTIVE"), "{page}");
    // Recover above the threshold but under clear_above → stays active.
    // Window so far: 10 hits + 90 misses. Add 230 hits: 240 / 330 = 0.727.
    blocking(lookups(redis.url(), 230, 0)).await;
    pw.wait_for(Duration::from_secs(5), "value 0.727", |b| {
        (value(b, "perfwatch_phase_trigger_value", &l)
            .is_some_and(|v| (v - 240.0 / 330.0).abs() < 1e-9))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        value(&pw.scrape().await, "perfwatch_phase_trigger_active", &l),
        Some(1.0),
        "hysteresis holds"
    );
    // Past clear_above: 300 hits over 390 lookups = 0.769 → clears.
    blocking(lookups(redis.url(), 60, 0)).await;
    pw.wait_for(Duration::from_secs(5), "cleared", |b| {
        (value(b, "perfwatch_phase_trigger_active", &l) == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(
        value(&pw.scrape().await, "perfwatch_phase_recommended", &[]),
        Some(0.0)
    );
    pw.stop().await;
}

/// Phase 3 health: the example config's `[redis.key_checks]` and its
/// `job_queue_backlog` trigger, as shipped (but no `for`), on a Celery
/// queue (a Redis list) that backs up past `above` and drains past
/// `clear_below`. A health trigger: active, yet phase 3 is not recommended.
#[tokio::test]
async fn the_example_queue_depth_trigger_sees_a_celery_backlog() {
    let example = common::example_config();
    let key_checks = example["redis"].as_array().unwrap()[0]["key_checks"].clone();
    let mut trigger = common::example_trigger("job_queue_backlog");
    assert_eq!(trigger["kind"].as_str(), Some("health"));
    let above = common::toml_number(&trigger, "above") as usize;
    let clear_below = common::toml_number(&trigger, "clear_below") as usize;
    trigger.remove("for");
    let redis = RedisServer::start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let toml = format!(
        "[global]\ninterval = \"300ms\"\ntimeout = \"200ms\"\n\
         [[redis]]\nname = \"queue\"\nurl = \"{}\"\n[redis.key_checks]\n{}\n\
         [[phase]]\nname = \"phase3\"\n[[phase.trigger]]\n{}",
        redis.url(),
        toml::to_string(&key_checks).unwrap(),
        toml::to_string(&trigger).unwrap()
    );
    let pw = Perfwatch::start(&toml).await;
    let l = [("phase", "phase3"), ("trigger", "job_queue_backlog")];
    let url = redis.url();
    // The queue holds `n` jobs: the list is replaced in one transaction.
    let queue = move |n: usize| {
        let url = url.clone();
        blocking(move || {
            let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg("celery").ignore();
            for i in 0..n {
                pipe.cmd("RPUSH")
                    .arg("celery")
                    .arg(format!("job-{i}"))
                    .ignore();
            }
            let _: () = pipe.query(&mut con).unwrap();
        })
    };
    let depth = |b: &str| value(b, "perfwatch_phase_trigger_value", &l);
    // `depth` jobs waiting, seen by the key check and the trigger.
    let wait_depth = |n: usize| {
        pw.wait_for(Duration::from_secs(5), "the queue depth", move |b| {
            (depth(b) == Some(n as f64)).then(|| b.to_owned())
        })
    };
    queue(above + 1).await;
    let body = wait_depth(above + 1).await;
    #[rustfmt::skip]
    let wanted: &[Expected] = &[
        ("redis_key_size", &[("target", "queue"), ("key", "celery")], Some((above + 1) as f64)),
        ("perfwatch_phase_trigger_active", &l, Some(1.0)),
        ("perfwatch_phase_trigger_info", &[("trigger", "job_queue_backlog"), ("kind", "health")], Some(1.0)),
        ("perfwatch_phase_active", &[("phase", "phase3")], Some(0.0)),
        ("perfwatch_phase_recommended", &[], Some(0.0)),
    ];
    assert_values(&body, wanted);
    let (_, page) = pw.get("/").await;
    assert!(page.contains("job_queue_backlog [health]"), "{page}");
    // Drained to clear_below: hysteresis holds the trigger.
    queue(clear_below).await;
    let body = wait_depth(clear_below).await;
    assert_value(&body, "perfwatch_phase_trigger_active", &l, Some(1.0));
    // Under clear_below: cleared.
    queue(clear_below - 1).await;
    let body = wait_depth(clear_below - 1).await;
    assert_value(&body, "perfwatch_phase_trigger_active", &l, Some(0.0));
    pw.stop().await;
}
