//! The HTML of `/stat` and `/list`: the worker's state for a person with a
//! browser. `/stat` shows the counters and the attempts, `/list` the
//! attempts only; `?html=0` on either gives the JSON snapshot instead, and
//! `?refresh=<seconds>` (1 to 3600) makes the page reload itself.
//!
//! Each queued or running attempt has a kill button: the page's script
//! POSTs the attempt's key (the JSON `/shutdown` takes) to `/shutdown` on
//! the page's own origin. When `WORKER_AUTH_TOKEN` is set the page never
//! contains the token: the operator types it into the page's token field,
//! or opens the page as `/list#token=<token>` (a URL fragment is never sent
//! to a server); the script keeps it in the tab's `sessionStorage` and sends
//! it as `Authorization: Bearer <token>`.
//!
//! Links to an attempt's files (`LOG`, `LOG.child`, `summary.html`) are
//! absolute, built from `ADVERTISE_ADDR`, so a page saved or forwarded
//! still points at this worker. With `WEB_DOMAIN` set, the script sets
//! `document.domain` so an operator's portal on that domain can embed the
//! page and script it.

use super::format::{bytes, escape, millis, speed, url_path};
use crate::worker::supervisor::{AttemptRow, StatSnapshot};
use std::fmt::Write;
use std::time::Duration;

/// What the page needs besides the snapshot.
pub struct PageContext<'a> {
    /// `http://<ADVERTISE_ADDR>`.
    pub base_url: &'a str,
    pub web_domain: Option<&'a str>,
    /// Whether `/shutdown` needs a token (never the token itself).
    pub auth_required: bool,
    /// Whether attempts run in children (so `LOG.child` exists).
    pub multi_process: bool,
    /// Whether attempt directories are kept after the attempt
    /// (`DEL_WORKER_TEMP_DB=false`), so their files can be linked.
    pub files_kept: bool,
    /// `?refresh=<seconds>`: the page reloads itself.
    pub refresh: Option<u32>,
}

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Stat,
    List,
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;font-size:90%}\
td.n{text-align:right}tr.running{background:#eef6ff}tr.failed{background:#fff0f0}\
tr.succeeded{background:#f0fff0}";

const SCRIPT: &str = r#"
const TOKEN_KEY = 'dcompact-worker-token';
function token() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (m) sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  const field = document.getElementById('token');
  if (field && field.value) sessionStorage.setItem(TOKEN_KEY, field.value);
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
async function kill(btn) {
  const headers = {'Content-Type': 'application/json'};
  const t = token();
  if (t) headers['Authorization'] = 'Bearer ' + t;
  btn.disabled = true;
  try {
    const r = await fetch('/shutdown', {method: 'POST', headers, body: btn.dataset.key});
    const a = await r.json();
    btn.textContent = r.ok ? 'cancel sent' : 'refused: ' + (a.error || r.status);
    btn.disabled = r.ok;
  } catch (e) {
    btn.textContent = 'failed: ' + e;
    btn.disabled = false;
  }
}
"#;

pub fn render(page: Page, snap: &StatSnapshot, ctx: &PageContext) -> String {
    let title = match page {
        Page::Stat => "stat",
        Page::List => "attempts",
    };
    let mut html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{id} {title}</title>\
         <style>{STYLE}</style>",
        id = escape(&snap.identity),
    );
    if let Some(seconds) = ctx.refresh {
        let _ = write!(html, "<meta http-equiv=refresh content={seconds}>");
    }
    html.push_str("<script>");
    if let Some(domain) = ctx.web_domain {
        // The domain is validated at start-up to [A-Za-z0-9.-].
        let _ = write!(
            html,
            "try {{ document.domain = '{domain}'; }} catch (e) {{ console.warn('WEB_DOMAIN:', e); }}"
        );
    }
    html.push_str(SCRIPT);
    let _ = write!(
        html,
        "</script></head><body><h1>{id}</h1>\
         <p>running {r} of {p} (most at once: {hw}), waiting {w} of {q}{stopping} \
         &middot; <a href=\"/stat\">stat</a> <a href=\"/list\">list</a> \
         <a href=\"/metrics\">metrics</a> <a href=\"?html=0\">json</a></p>",
        id = escape(&snap.identity),
        r = snap.running,
        p = snap.max_parallel_compactions,
        hw = snap.running_high_water,
        w = snap.waiting,
        q = snap.max_waiting_compactions,
        stopping = state_note(snap),
    );
    if ctx.auth_required {
        html.push_str(
            "<p><label>token for kill <input id=token type=password autocomplete=off></label> \
             (or open this page as <code>#token=&hellip;</code>)</p>",
        );
    }
    if page == Page::Stat {
        counters(&mut html, snap);
        etcd(&mut html, snap);
        mounts(&mut html, snap);
        zipserver(&mut html, snap);
    }
    attempts(&mut html, snap, ctx);
    html.push_str("</body></html>");
    html
}

/// After the load line: whether the worker drains or stops.
fn state_note(snap: &StatSnapshot) -> String {
    match (&snap.drain, snap.stopping) {
        (_, true) => " (stopping)".into(),
        (Some(d), false) => format!(
            " (draining since {}: {})",
            millis(d.elapsed_ms),
            escape(&d.cause)
        ),
        (None, false) => String::new(),
    }
}

fn counters(html: &mut String, snap: &StatSnapshot) {
    let c = &snap.counters;
    let _ = write!(
        html,
        "<h2>counters</h2><table id=counters>\
         <tr><th>accepted</th><td class=n>{}</td></tr>\
         <tr><th>succeeded</th><td class=n>{}</td></tr>\
         <tr><th>bytes read</th><td class=n>{}</td></tr>\
         <tr><th>bytes written</th><td class=n>{}</td></tr>",
        c.accepted,
        c.succeeded,
        bytes(c.bytes_read),
        bytes(c.bytes_written)
    );
    for (outcome, n) in &c.failed {
        let _ = write!(
            html,
            "<tr><th>ended {outcome}</th><td class=n>{n}</td></tr>"
        );
    }
    for (reason, n) in &c.rejected {
        let _ = write!(
            html,
            "<tr><th>rejected {reason}</th><td class=n>{n}</td></tr>"
        );
    }
    for (race, n) in &c.open_retries {
        let _ = write!(
            html,
            "<tr><th>open retried after {race}</th><td class=n>{n}</td></tr>"
        );
    }
    let _ = write!(
        html,
        "<tr><th>open races unresolved</th><td class=n>{}</td></tr>",
        c.open_races_unresolved
    );
    html.push_str("</table>");
}

/// With `ETCD_URL`: the worker's registration.
fn etcd(html: &mut String, snap: &StatSnapshot) {
    let Some(e) = &snap.etcd else { return };
    let _ = write!(
        html,
        "<h2>etcd</h2><p id=etcd>{} as <code>{}</code> &middot; registrations {} \
         &middot; done keys {} (dropped {}){}</p>",
        if e.registered {
            "registered"
        } else {
            "not registered"
        },
        escape(&e.key),
        e.registrations,
        e.done_published,
        e.done_dropped,
        e.last_error.as_deref().map_or(String::new(), |x| format!(
            " &middot; last error: {}",
            escape(x)
        ))
    );
}

/// With a zipserver: its socket, the worker's own zipserver (a link to its
/// `/stat`) and what the children sent to it or compressed themselves.
fn zipserver(html: &mut String, snap: &StatSnapshot) {
    let Some(z) = &snap.zipserver else { return };
    let c = &z.counts;
    let _ = write!(
        html,
        "<h2>zipserver</h2><p id=zipserver>socket <code>{}</code>",
        escape(&z.socket)
    );
    if let Some(s) = &z.sidecar {
        match (&s.pid, &s.http_addr) {
            (Some(pid), Some(addr)) => {
                let _ = write!(
                    html,
                    " &middot; pid {pid} &middot; <a href=\"http://{a}/stat\">{a}</a>",
                    a = escape(addr)
                );
            }
            _ => html.push_str(" &middot; not running"),
        }
        let _ = write!(html, " &middot; restarts {}", s.restarts);
        if let Some(e) = &s.last_exit {
            let _ = write!(html, " (last exit: {})", escape(e));
        }
    }
    let _ = write!(
        html,
        "</p><table id=zip><tr><th></th><th>blocks</th><th>bytes in</th><th>bytes out</th></tr>\
         <tr><th>zipserver</th><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\
         <tr><th>in the child (fallback)</th><td class=n>{}</td><td class=n>{}</td><td></td></tr></table>",
        c.remote_blocks,
        bytes(c.remote_bytes_in),
        bytes(c.remote_bytes_out),
        c.fallback_blocks,
        bytes(c.fallback_bytes)
    );
}

/// With `NFS_DYNAMIC_MOUNT`: the mount table's counters and its mounts.
fn mounts(html: &mut String, snap: &StatSnapshot) {
    let Some(m) = &snap.mounts else { return };
    let c = &m.counters;
    let _ = write!(
        html,
        "<h2>mounts</h2><p>active {} of {} &middot; mounted {} &middot; unmounted {} \
         &middot; failed {} &middot; remounted {}</p><table id=mounts><tr><th>instance</th>\
         <th>source</th><th>type</th><th>target</th><th>state</th><th>jobs</th>\
         <th>waiting</th><th>remounts</th></tr>",
        m.active, m.capacity, c.mounted, c.unmounted, c.failed, c.remounted
    );
    // Never the options: the table has no column for them.
    for r in &m.mounts {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&r.instance),
            escape(&r.source),
            escape(&r.fs_type),
            escape(&r.target.display().to_string()),
            r.state,
            r.users,
            r.waiting,
            r.generation
        );
    }
    html.push_str("</table>");
}

fn attempts(html: &mut String, snap: &StatSnapshot, ctx: &PageContext) {
    html.push_str(
        "<h2>attempts</h2><table id=attempts><tr><th>attempt</th><th>state</th>\
         <th>outcome</th><th>input</th><th>read</th><th>written</th><th>speed</th>\
         <th>elapsed / estimate</th><th>files</th><th></th></tr>",
    );
    // Running first, then queued, then the most recently ended.
    let mut rows: Vec<&AttemptRow> = snap.attempts.iter().collect();
    let rank = |r: &AttemptRow| match r.state {
        "running" => 0,
        "queued" => 1,
        _ => 2,
    };
    rows.sort_by_key(|r| (rank(r), r.elapsed_ms));
    for r in rows {
        row(html, r, ctx);
    }
    html.push_str("</table>");
}

fn row(html: &mut String, r: &AttemptRow, ctx: &PageContext) {
    let class = match r.outcome_name {
        None => r.state,
        Some("succeeded") => "succeeded",
        Some(_) => "failed",
    };
    let run = Duration::from_millis(r.run_ms);
    let elapsed = if r.estimate_ms > 0 {
        format!(
            "{} / {} ({}%)",
            millis(r.run_ms),
            millis(r.estimate_ms),
            r.run_ms * 100 / r.estimate_ms
        )
    } else {
        format!("{} / none", millis(r.run_ms))
    };
    let mut files = String::new();
    if ctx.files_kept && r.state != "queued" {
        let mut names = vec!["LOG"];
        if ctx.multi_process {
            names.push("LOG.child");
        }
        if r.state == "finished" {
            names.push("summary.html");
        }
        for f in names {
            let _ = write!(
                files,
                "<a href=\"{base}/attempts/{path}/{f}\">{f}</a> ",
                base = escape(ctx.base_url),
                path = escape(&url_path(&r.name)),
            );
        }
    }
    let kill = if r.state == "finished" {
        String::new()
    } else {
        let key = serde_json::to_string(&r.key).unwrap_or_default();
        format!(
            "<button class=kill data-key=\"{}\" onclick=\"kill(this)\">kill</button>",
            escape(&key)
        )
    };
    let _ = write!(
        html,
        "<tr class=\"{class}\" data-attempt=\"{name}\"><td>{name}</td><td>{state}</td>\
         <td title=\"{detail}\">{outcome}</td><td class=n>{input}</td><td class=n>{read}</td>\
         <td class=n>{written}</td><td class=n>{speed}</td><td class=n>{elapsed}</td>\
         <td>{files}</td><td>{kill}</td></tr>",
        name = escape(&r.name),
        state = r.state,
        detail = escape(r.outcome.as_deref().unwrap_or("")),
        outcome = r.outcome_name.unwrap_or(""),
        input = bytes(r.input_bytes),
        read = bytes(r.bytes_read),
        written = bytes(r.bytes_written),
        speed = speed(r.bytes_read, run),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::attempt::AttemptKey;
    use crate::rocks::plugins::PluginCounts;
    use crate::worker::drain::DrainSnapshot;
    use crate::worker::mounts::stats::{MountCounters, MountRow, MountsSnapshot};
    use crate::worker::registration::RegistrationSnapshot;
    use crate::worker::stats::Counters;
    use crate::worker::supervisor::PluginsSnapshot;
    use crate::worker::zip_link::ZipLinkSnapshot;
    use zipserver::client::ZipCounts;
    use zipserver::sidecar::SidecarStatus;

    fn snapshot() -> StatSnapshot {
        let row = |name: &str, state: &'static str, outcome: Option<&'static str>| AttemptRow {
            name: name.into(),
            key: AttemptKey {
                instance_name: "i<x>".into(),
                start_time: 1,
                dbname: "/data/db".into(),
                job_id: 4 << 32,
                attempt: 0,
            },
            state,
            outcome: outcome.map(str::to_owned),
            elapsed_ms: 10,
            outcome_name: outcome,
            input_bytes: 1 << 20,
            bytes_read: if outcome.is_some() { 1 << 20 } else { 0 },
            bytes_written: 1 << 19,
            estimate_ms: 2000,
            run_ms: 1000,
        };
        StatSnapshot {
            identity: "dcompact-worker@w7.example:8080".into(),
            running: 1,
            running_high_water: 1,
            waiting: 0,
            max_parallel_compactions: 2,
            max_waiting_compactions: 4,
            stopping: false,
            draining: true,
            drain: Some(DrainSnapshot {
                cause: "SIGUSR1".into(),
                since_unix_ms: 1_700_000_000_000,
                elapsed_ms: 2500,
            }),
            counters: Counters::default(),
            plugins: PluginsSnapshot {
                classes: Vec::new(),
                counts: PluginCounts::default(),
            },
            attempts: vec![
                row("i/1/db/job-00004-00/att-00", "running", None),
                row("i/1/db/job-00003-00/att-00", "finished", Some("succeeded")),
            ],
            zipserver: Some(ZipLinkSnapshot {
                socket: "/w/zipserver.sock".into(),
                sidecar: Some(SidecarStatus {
                    pid: Some(42),
                    http_addr: Some("127.0.0.1:8090".into()),
                    starts: 2,
                    restarts: 1,
                    last_exit: Some("signal 9".into()),
                }),
                counts: ZipCounts {
                    blocks_seen: 7,
                    remote_blocks: 5,
                    remote_bytes_in: 5 << 12,
                    remote_bytes_out: 1 << 12,
                    fallback_blocks: 2,
                    fallback_bytes: 2 << 12,
                    connects: 3,
                    ring_blocks: 4,
                    rings: 1,
                    ..ZipCounts::default()
                },
            }),
            etcd: Some(RegistrationSnapshot {
                key: "/dcompact/workers/w7.example:8080".into(),
                registered: false,
                registrations: 2,
                done_published: 9,
                done_dropped: 1,
                last_error: Some("connection refused <x>".into()),
            }),
            mounts: Some(MountsSnapshot {
                capacity: 32,
                active: 1,
                counters: MountCounters {
                    mounted: 2,
                    unmounted: 1,
                    failed: 0,
                    remounted: 1,
                },
                mounts: vec![MountRow {
                    instance: "<i>".into(),
                    source: "nfs.example:/export/i".into(),
                    fs_type: "nfs4".into(),
                    target: "/mnt/farm/i".into(),
                    state: "mounted",
                    users: 1,
                    waiting: 0,
                    generation: 1,
                }],
            }),
            remote: Default::default(),
        }
    }

    #[test]
    fn links_use_the_advertised_address_and_kill_only_live_attempts() {
        let ctx = PageContext {
            base_url: "http://w7.example:8080",
            web_domain: Some("example"),
            auth_required: true,
            multi_process: true,
            files_kept: true,
            refresh: Some(5),
        };
        let html = render(Page::List, &snapshot(), &ctx);
        assert!(html.contains("<meta http-equiv=refresh content=5>"));
        assert!(
            html.contains("waiting 0 of 4 (draining since 2.500 s: SIGUSR1)"),
            "{html}"
        );
        assert!(html.contains(
            "href=\"http://w7.example:8080/attempts/i/1/db/job-00004-00/att-00/LOG.child\""
        ));
        assert!(html.contains(
            "href=\"http://w7.example:8080/attempts/i/1/db/job-00003-00/att-00/summary.html\""
        ));
        assert!(
            !html.contains("job-00004-00/att-00/summary.html"),
            "not ended yet"
        );
        assert_eq!(html.matches("class=kill").count(), 1);
        // The key is JSON in an attribute, escaped.
        assert!(html.contains("data-key=\"{&quot;instance_name&quot;:&quot;i&lt;x&gt;&quot;"));
        assert!(html.contains("document.domain = 'example'"));
        assert!(html.contains("id=token"));
        assert!(html.contains("1.000 s / 2.000 s (50%)"));
        assert!(!html.contains("<h2>counters</h2>"));
        assert!(render(Page::Stat, &snapshot(), &ctx).contains("<h2>counters</h2>"));
        let stat = render(Page::Stat, &snapshot(), &ctx);
        assert!(stat.contains("active 1 of 32 &middot; mounted 2"), "{stat}");
        assert!(stat.contains(
            "<td>&lt;i&gt;</td><td>nfs.example:/export/i</td><td>nfs4</td><td>/mnt/farm/i</td>\
             <td>mounted</td>"
        ));
        assert!(!html.contains("<h2>mounts</h2>"));
        assert!(stat.contains("not registered as <code>/dcompact/workers/w7.example:8080</code>"));
        assert!(stat.contains("last error: connection refused &lt;x&gt;"));
        assert!(stat.contains("<a href=\"http://127.0.0.1:8090/stat\">127.0.0.1:8090</a>"));
        assert!(stat.contains("restarts 1 (last exit: signal 9)"), "{stat}");
        assert!(
            stat.contains("<tr><th>zipserver</th><td class=n>5</td>"),
            "{stat}"
        );

        let plain = PageContext {
            web_domain: None,
            auth_required: false,
            files_kept: false,
            refresh: None,
            ..ctx
        };
        let html = render(Page::List, &snapshot(), &plain);
        assert!(!html.contains("http-equiv=refresh"));
        assert!(!html.contains("document.domain"));
        assert!(!html.contains("id=token"));
        assert!(
            !html.contains("/attempts/"),
            "no links to removed directories"
        );
    }
}
