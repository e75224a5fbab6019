//! Redis Sentinel: the primary's address, resolved through the sentinels on
//! every poll, and the sentinels' own view of it.
//!
//! Each poll asks every configured sentinel at once, over one persistent
//! connection each, in one pipeline (one round trip):
//! `SENTINEL GET-MASTER-ADDR-BY-NAME`, `SENTINEL MASTER`, `SENTINEL
//! REPLICAS`, `SENTINEL SENTINELS` and `SENTINEL CKQUORUM`. The sentinels
//! share a quarter of the poll timeout; one that does not answer in it is
//! down for this poll (its connection is dropped) and the others decide.
//!
//! Why poll rather than subscribe to `+switch-master`: a subscription needs
//! a connection that stays open between polls and a task to read it, and
//! misses a switch that happened while it was down; asking on each poll
//! costs one small round trip per sentinel and follows a failover within
//! one interval (two at worst, when the switch lands between our question
//! and the sentinels' agreement).
//!
//! Which address wins when the sentinels disagree (during a failover, some
//! still name the old primary): the one reported with the highest
//! `config-epoch` (a failover bumps the epoch; sentinels adopt the newer
//! configuration), then the one most sentinels report, then the smallest,
//! so that the choice is deterministic.
//!
//! The view keeps redis_exporter's `redis_sentinel_*` names and labels
//! (plus `target` and `sentinel`, the sentinel asked: redis_exporter scrapes
//! one sentinel per instance, perfwatch asks several from one target).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use redis::{ConnectionInfo, Value};

use super::catalog;
use super::config::SentinelReady;
use super::connection::{self, ReplyBudget, Session};
use super::reply::{fields, text};
use crate::exposition::Families;
use crate::secret::read_secret_file;
use crate::tls::TlsReady;

/// Most bytes one sentinel may send per poll: its replies name a handful
/// of replicas and sentinels (a few hundred bytes each).
const SENTINEL_REPLY_BYTES: usize = 1024 * 1024;

/// What one sentinel said this poll.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SentinelView {
    /// `GET-MASTER-ADDR-BY-NAME`: where it says the primary is.
    pub master_addr: Option<(String, u16)>,
    /// `SENTINEL MASTER`'s fields (`flags`, `num-slaves`,
    /// `num-other-sentinels`, `quorum`, `config-epoch`, ...).
    pub master: HashMap<String, String>,
    /// Replicas it knows that are not down (`s_down`/`o_down`).
    pub ok_replicas: usize,
    /// Other sentinels it knows that are not down.
    pub ok_other_sentinels: usize,
    /// `CKQUORUM`: Ok(message) when the quorum and failover authorization
    /// can be reached, Err(message) otherwise.
    pub ckquorum: Result<String, String>,
}

impl SentinelView {
    fn number(&self, field: &str) -> Option<f64> {
        self.master.get(field).and_then(|v| v.parse().ok())
    }

    /// `ok`, `sdown` or `odown`, as the sentinel's INFO reports the primary.
    fn status(&self) -> &'static str {
        let flags = self.master.get("flags").map_or("", String::as_str);
        if flags.contains("o_down") {
            "odown"
        } else if flags.contains("s_down") {
            "sdown"
        } else {
            "ok"
        }
    }

    /// `ip:port` of the primary as `SENTINEL MASTER` names it.
    fn master_address(&self) -> String {
        match (self.master.get("ip"), self.master.get("port")) {
            (Some(ip), Some(port)) => format!("{ip}:{port}"),
            _ => self
                .master_addr
                .as_ref()
                .map_or_else(String::new, |(h, p)| format!("{h}:{p}")),
        }
    }
}

/// One configured sentinel and its persistent connection.
struct Sentinel {
    /// The entry as configured: the `sentinel` label.
    label: String,
    info: ConnectionInfo,
    /// `sentinel_password_file`, read again before each new connection so
    /// that a rotated secret is picked up without a reload.
    password_file: Option<PathBuf>,
    session: Option<Session>,
    budget: ReplyBudget,
}

impl Sentinel {
    /// Asks this sentinel about `name` within `timeout`; `None` (and the
    /// connection dropped) when it did not answer in time or at all.
    async fn ask(
        &mut self,
        name: &str,
        tls: Option<&TlsReady>,
        timeout: Duration,
    ) -> Option<SentinelView> {
        let asked = tokio::time::timeout(timeout, self.ask_now(name, tls)).await;
        match asked {
            Ok(Ok(view)) => Some(view),
            Ok(Err(e)) => {
                tracing::debug!(sentinel = %self.label, error = %e, "sentinel did not answer");
                self.session = None;
                None
            }
            Err(_) => {
                tracing::debug!(sentinel = %self.label, "sentinel timed out");
                self.session = None;
                None
            }
        }
    }

    async fn ask_now(
        &mut self,
        name: &str,
        tls: Option<&TlsReady>,
    ) -> Result<SentinelView, String> {
        self.budget.reset();
        if self.session.is_none() {
            if let Some(path) = &self.password_file {
                let pw = read_secret_file(path)?;
                let settings = self.info.redis_settings().clone().set_password(pw.expose());
                self.info = self.info.clone().set_redis_settings(settings);
            }
            let s = connection::connect(&self.info, &self.budget, tls)
                .await
                .map_err(|e| format!("{e:?}"))?;
            self.session = Some(s);
        }
        let Some(session) = self.session.as_mut() else {
            unreachable!("connected above")
        };
        let mut pipe = redis::pipe();
        // Error replies (an unknown master name, no quorum) come back as
        // values, not as the pipeline's failure.
        pipe.ignore_errors();
        for sub in [
            "GET-MASTER-ADDR-BY-NAME",
            "MASTER",
            "REPLICAS",
            "SENTINELS",
            "CKQUORUM",
        ] {
            pipe.cmd("SENTINEL").arg(sub).arg(name);
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut session.conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(parse_view(&replies))
    }
}

/// The sentinels of one target and what they said last.
pub(crate) struct SentinelWatch {
    master_name: String,
    sentinels: Vec<Sentinel>,
    /// Each sentinel's answer of the last poll (`None`: no answer).
    views: Vec<Option<SentinelView>>,
    /// The primary perfwatch polls now.
    pub current: Option<(String, u16)>,
    /// Times the resolved primary changed since perfwatch started.
    failovers: u64,
}

impl SentinelWatch {
    pub(crate) fn new(ready: &SentinelReady) -> Self {
        Self {
            master_name: ready.master_name.clone(),
            sentinels: ready
                .sentinels
                .iter()
                .map(|(label, info)| Sentinel {
                    label: label.clone(),
                    info: info.clone(),
                    password_file: ready.password_file.clone(),
                    session: None,
                    budget: ReplyBudget::new(SENTINEL_REPLY_BYTES),
                })
                .collect(),
            views: Vec::new(),
            current: None,
            failovers: 0,
        }
    }

    /// Asks every sentinel at once (each within `timeout`) and updates
    /// [`Self::current`]. Returns whether the primary changed (a failover
    /// to follow: the caller drops its connection to the old one).
    pub(crate) async fn resolve(&mut self, tls: Option<&TlsReady>, timeout: Duration) -> bool {
        let name = self.master_name.clone();
        self.views = join_all(
            self.sentinels
                .iter_mut()
                .map(|s| s.ask(&name, tls, timeout)),
        )
        .await;
        let Some(chosen) = choose_master(&self.views) else {
            return false;
        };
        if self.current.as_ref() == Some(&chosen) {
            return false;
        }
        if let Some(old) = &self.current {
            self.failovers += 1;
            tracing::info!(
                master_name = %self.master_name,
                from = %format!("{}:{}", old.0, old.1),
                to = %format!("{}:{}", chosen.0, chosen.1),
                "sentinels report a new primary; following it"
            );
        }
        self.current = Some(chosen);
        true
    }

    /// Whether any sentinel answered in the last [`Self::resolve`].
    pub(crate) fn any_answered(&self) -> bool {
        self.views.iter().any(Option::is_some)
    }

    /// The master name, for messages.
    pub(crate) fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The sentinels' view and perfwatch's own judgements of it.
    pub(crate) fn export(&self, target: &str, out: &mut Families) {
        let name = self.master_name.as_str();
        let mut addresses: Vec<&(String, u16)> = Vec::new();
        for (s, view) in self.sentinels.iter().zip(&self.views) {
            let sentinel = s.label.as_str();
            out.gauge(
                &catalog::SENTINEL_UP,
                &[("target", target), ("sentinel", sentinel)],
                f64::from(u8::from(view.is_some())),
            );
            let Some(v) = view else { continue };
            if let Some(a) = &v.master_addr
                && !addresses.contains(&a)
            {
                addresses.push(a);
            }
            if v.master.is_empty() {
                // It does not monitor `master_name`: only its CKQUORUM error.
                export_ckquorum(v, target, sentinel, name, out);
                continue;
            }
            let address = v.master_address();
            let l = [
                ("target", target),
                ("sentinel", sentinel),
                ("master_name", name),
                ("master_address", address.as_str()),
            ];
            let status = v.status();
            out.gauge(
                &catalog::SENTINEL_MASTER_STATUS,
                &[
                    ("target", target),
                    ("sentinel", sentinel),
                    ("master_name", name),
                    ("master_address", address.as_str()),
                    ("master_status", status),
                ],
                f64::from(u8::from(status == "ok")),
            );
            if let Some(n) = v.number("num-slaves") {
                out.gauge(&catalog::SENTINEL_MASTER_SLAVES, &l, n);
            }
            out.gauge(
                &catalog::SENTINEL_MASTER_OK_SLAVES,
                &l,
                v.ok_replicas as f64,
            );
            // Like the sentinel's INFO (`sentinels=`) and redis_exporter:
            // the sentinel counts itself.
            if let Some(n) = v.number("num-other-sentinels") {
                out.gauge(&catalog::SENTINEL_MASTER_SENTINELS, &l, n + 1.0);
            }
            out.gauge(
                &catalog::SENTINEL_MASTER_OK_SENTINELS,
                &l,
                (v.ok_other_sentinels + 1) as f64,
            );
            if let Some(q) = v.number("quorum") {
                out.gauge(&catalog::SENTINEL_MASTER_SETTING_CKQUORUM, &l, q);
            }
            export_ckquorum(v, target, sentinel, name, out);
        }
        if let Some((host, port)) = &self.current {
            let address = format!("{host}:{port}");
            out.gauge(
                &catalog::SENTINEL_RESOLVED_MASTER_INFO,
                &[
                    ("target", target),
                    ("master_name", name),
                    ("master_address", address.as_str()),
                ],
                1.0,
            );
        }
        out.gauge(
            &catalog::SENTINEL_MASTER_ADDRESSES,
            &[("target", target)],
            addresses.len() as f64,
        );
        out.counter(
            &catalog::SENTINEL_FAILOVERS_TOTAL,
            &[("target", target)],
            self.failovers as f64,
        );
    }
}

fn export_ckquorum(v: &SentinelView, target: &str, sentinel: &str, name: &str, out: &mut Families) {
    let (ok, message) = match &v.ckquorum {
        Ok(m) => (1.0, m.as_str()),
        Err(m) => (0.0, m.as_str()),
    };
    out.gauge(
        &catalog::SENTINEL_MASTER_CKQUORUM_STATUS,
        &[
            ("target", target),
            ("sentinel", sentinel),
            ("master_name", name),
            ("message", message),
        ],
        ok,
    );
}

/// The primary to poll, from the sentinels' answers (see the module docs):
/// highest `config-epoch`, then most votes, then the smallest address.
pub(crate) fn choose_master(views: &[Option<SentinelView>]) -> Option<(String, u16)> {
    let mut votes: Vec<((String, u16), i64, usize)> = Vec::new();
    for v in views.iter().flatten() {
        let Some(addr) = &v.master_addr else { continue };
        let epoch = v
            .master
            .get("config-epoch")
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        match votes.iter_mut().find(|(a, _, _)| a == addr) {
            Some((_, e, n)) => {
                *e = (*e).max(epoch);
                *n += 1;
            }
            None => votes.push((addr.clone(), epoch, 1)),
        }
    }
    votes
        .into_iter()
        .max_by(|(a1, e1, n1), (a2, e2, n2)| e1.cmp(e2).then(n1.cmp(n2)).then(a2.cmp(a1)))
        .map(|(a, _, _)| a)
}

/// The five replies of one sentinel's pipeline, parsed (pure).
pub(crate) fn parse_view(replies: &[Value]) -> SentinelView {
    let get = |i: usize| replies.get(i).unwrap_or(&Value::Nil);
    let master_addr = match get(0) {
        Value::Array(items) if items.len() == 2 => match (text(&items[0]), text(&items[1])) {
            (Some(h), Some(p)) => p.parse().ok().map(|p| (h, p)),
            _ => None,
        },
        _ => None,
    };
    let master = fields(get(1));
    let ok_count = |v: &Value| match v {
        Value::Array(items) => items
            .iter()
            .map(fields)
            .filter(|f| {
                f.get("flags")
                    .is_some_and(|fl| !fl.contains("s_down") && !fl.contains("o_down"))
            })
            .count(),
        _ => 0,
    };
    let ckquorum = match get(4) {
        Value::ServerError(e) => Err(format!("{} {}", e.code(), e.details().unwrap_or_default())
            .trim()
            .to_owned()),
        other => text(other).ok_or_else(|| format!("unexpected reply {other:?}")),
    };
    SentinelView {
        master_addr,
        master,
        ok_replicas: ok_count(get(2)),
        ok_other_sentinels: ok_count(get(3)),
        ckquorum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn flat(pairs: &[(&str, &str)]) -> Value {
        Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect())
    }

    fn view(addr: (&str, u16), epoch: &str) -> Option<SentinelView> {
        Some(SentinelView {
            master_addr: Some((addr.0.into(), addr.1)),
            master: [("config-epoch".to_owned(), epoch.to_owned())].into(),
            ok_replicas: 0,
            ok_other_sentinels: 0,
            ckquorum: Ok(String::new()),
        })
    }

    #[test]
    fn the_newest_epoch_wins_then_the_majority() {
        let old = ("10.0.0.1", 6379);
        let new = ("10.0.0.2", 6379);
        // Mid-failover: two sentinels still name the old primary, the one
        // that ran the failover names the new one with a newer epoch.
        let views = [view(old, "0"), view(old, "0"), view(new, "1"), None];
        assert_eq!(choose_master(&views), Some(("10.0.0.2".into(), 6379)));
        let views = [view(old, "1"), view(new, "1"), view(new, "1")];
        assert_eq!(choose_master(&views), Some(("10.0.0.2".into(), 6379)));
        assert_eq!(choose_master(&[None, None]), None);
    }

    #[test]
    fn a_sentinel_reply_is_parsed_with_counts_of_healthy_peers() {
        let replies = [
            Value::Array(vec![bulk("127.0.0.1"), bulk("7001")]),
            flat(&[
                ("name", "mymaster"),
                ("ip", "127.0.0.1"),
                ("port", "7001"),
                ("flags", "master"),
                ("num-slaves", "2"),
                ("num-other-sentinels", "2"),
                ("quorum", "2"),
            ]),
            Value::Array(vec![
                flat(&[("flags", "slave")]),
                flat(&[("flags", "s_down,slave")]),
            ]),
            Value::Array(vec![
                flat(&[("flags", "sentinel")]),
                flat(&[("flags", "sentinel")]),
            ]),
            Value::SimpleString("OK 3 usable Sentinels.".into()),
        ];
        let v = parse_view(&replies);
        assert_eq!(v.master_addr, Some(("127.0.0.1".into(), 7001)));
        assert_eq!(v.status(), "ok");
        assert_eq!((v.ok_replicas, v.ok_other_sentinels), (1, 2));
        assert_eq!(v.ckquorum, Ok("OK 3 usable Sentinels.".into()));
        assert_eq!(v.master_address(), "127.0.0.1:7001");
        // Nothing known about the name: no address, an error for CKQUORUM.
        let v = parse_view(&[Value::Nil]);
        assert_eq!(v.master_addr, None);
        assert!(v.ckquorum.is_err());
    }
}
