//! The chaos test: a hoster process writing with `sync` is SIGKILLed and
//! opened again round after round, while the farm around it fails (see
//! `faults`); after every open every key equals the expected state.
//! Compactions must really have run on the workers (their counters, their
//! identity in live SSTs), and the steady worker's memory and open files
//! must come back within 10% of where they were after a warm-up.
//!
//! `FARM_SOAK=30m` (or `10m`, `90s`) runs rounds for that long instead of
//! a fixed number, sampling the steady worker every second, and writes the
//! samples as CSV with an SVG plot into `FARM_SOAK_OUT` (default: a
//! `farm-chaos-soak` directory in the system's temporary directory).
//! `FARM_CHAOS_SEED` repeats a run's random choices.

use super::faults::{Fault, Injector};
use super::hoster::{HosterArgs, HosterProcess};
use super::plot;
use super::report::Tally;
use super::resources::{self, Series, Usage};
use super::stand::{Stand, RETENTION_WAIT};
use crate::harness::{multi_process, worker_stat};
use farm::rocks::sst::SstProperties;
use farm::workload::expected::ExpectedState;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const KEY_SPACE: u64 = 20_000;
/// Rounds (hoster lives) of the short run.
const ROUNDS: u32 = 6;
/// Faults injected per round, besides the hoster's kill.
const FAULTS_PER_ROUND: usize = 2;
/// How often a soak reads the steady worker once it is idle.
const IDLE_EVERY: Duration = Duration::from_secs(300);

/// How long the run lasts: a fixed number of rounds, or a soak.
struct Plan {
    soak: Option<Duration>,
}

impl Plan {
    fn from_env() -> Plan {
        let soak = std::env::var("FARM_SOAK").ok().map(|s| {
            let (num, unit) = s.split_at(s.len() - 1);
            let num: u64 = num
                .parse()
                .unwrap_or_else(|_| panic!("FARM_SOAK={s}: a number and s, m or h"));
            Duration::from_secs(match unit {
                "s" => num,
                "m" => num * 60,
                "h" => num * 3600,
                _ => panic!("FARM_SOAK={s}: a number and s, m or h"),
            })
        });
        Plan { soak }
    }

    fn more(&self, round: u32, started: Instant) -> bool {
        match self.soak {
            Some(d) => started.elapsed() < d,
            None => round < ROUNDS,
        }
    }
}

fn seed() -> u64 {
    std::env::var("FARM_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        })
}

/// The steady worker's usage once it is idle: no attempt running or
/// queued, then long enough for finished attempts to leave its memory
/// (`RESULT_RETENTION`) and connections to close.
fn idle_usage(stand: &Stand) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = worker_stat(&stand.steady);
        if s["running"] == 0 && s["waiting"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the steady worker stays busy");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(RETENTION_WAIT);
    resources::sample(stand.steady_pid()).expect("the steady worker runs")
}

struct Run {
    stand: Stand,
    expected: PathBuf,
    params: String,
    tally: Tally,
    injector: Injector,
    series: Series,
    lives: u64,
}

impl Run {
    fn hoster(&mut self, ops: u64) -> HosterProcess {
        self.lives += 1;
        let log = self.stand.tmp.path().join("logs/hoster.log");
        HosterProcess::start(&HosterArgs {
            db: &self.stand.db,
            expected: &self.expected,
            params: &self.params,
            key_space: KEY_SPACE,
            seed: self.lives,
            ops,
            log: &log,
        })
    }

    /// Opens the hoster, takes its check, and for a bounded run waits for
    /// its end (writes, full compaction, settled, checked again).
    fn bounded(&mut self, ops: u64) {
        let mut h = self.hoster(ops);
        let v = h.expect_event("verified", Duration::from_secs(120));
        self.tally.checked(&v);
        let done = h.expect_event("done", Duration::from_secs(240));
        self.tally.checked(&done);
        self.tally.life(&done);
        h.wait_exit(Duration::from_secs(30));
    }

    /// One hoster life killed at a random moment, with `faults` injected
    /// meanwhile.
    fn round(&mut self, rng: &mut fastrand::Rng, faults: &[Fault]) {
        let mut h = self.hoster(0);
        let v = h.expect_event("verified", Duration::from_secs(120));
        self.tally.reopens += 1;
        self.tally.checked(&v);
        let end = Instant::now() + Duration::from_millis(rng.u64(4_000..9_000));
        for f in faults {
            self.pause(Duration::from_millis(rng.u64(300..2_000)));
            self.injector.inject(&mut self.stand, *f);
            h.drain();
            assert!(h.alive(), "the hoster died of a farm fault: {f:?}");
        }
        self.pause(end.saturating_duration_since(Instant::now()));
        let last = h.kill().expect("the hoster reported progress");
        self.injector.count(Fault::HosterKill);
        self.tally.life(&last);
    }

    /// Sleeps `d`, sampling the steady worker every second.
    fn pause(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.series.record(self.stand.steady_pid());
            std::thread::sleep(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1)),
            );
        }
    }
}

/// Live SSTs of the closed DB written by a worker (`db_host_id` names one),
/// of all live SSTs; opened read-only, checked once more against the
/// expected state by the test itself.
fn final_check(stand: &Stand, expected: &std::path::Path, identities: &[String]) -> (usize, usize) {
    let db = rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), &stand.db, false)
        .expect("the DB opens read-only");
    let state = ExpectedState::open(expected, KEY_SPACE).expect("expected state");
    let (v, _) = state
        .verify(&db)
        .expect("every key equals the expected state");
    assert_eq!(
        (v.pending_applied, v.pending_lost),
        (0, 0),
        "no write in flight"
    );
    let files = db.live_files().expect("live files");
    let remote = files
        .iter()
        .filter(|f| {
            let p = stand.db.join(f.name.trim_start_matches('/'));
            let props = SstProperties::read(&p).expect("sst properties");
            identities.contains(&props.db_host_id)
        })
        .count();
    (remote, files.len())
}

#[test]
fn hoster_killed_and_reopened_while_the_farm_fails_around_it() {
    let plan = Plan::from_env();
    let seed = seed();
    println!("FARM_CHAOS_SEED={seed} multi_process={}", multi_process());
    let mut rng = fastrand::Rng::with_seed(seed);
    let stand = Stand::start();
    let identities = vec![
        worker_stat(&stand.steady)["identity"]
            .as_str()
            .expect("identity")
            .to_owned(),
        format!(
            "dcompact-worker@{}",
            stand.victim_url().trim_start_matches("http://")
        ),
    ];
    let mut run = Run {
        expected: stand.tmp.path().join("expected"),
        params: stand.params(),
        stand,
        tally: Tally::default(),
        injector: Injector::new(seed),
        series: Series::start(),
        lives: 0,
    };

    // Warm-up: a bounded life whose compactions reach the workers, then the
    // first round of faults; the steady worker's usage afterwards is the
    // baseline. Its allocator's arenas and RocksDB's caches fill in that
    // first minute (the soak in docs/CRASHTEST.md shows the curve), so an
    // earlier baseline would measure their filling, not what the chaos
    // leaves behind.
    run.bounded(20_000);
    let mut start_usage = None;

    let kinds = Fault::injectable(multi_process());
    let mut queue: Vec<Fault> = Vec::new();
    let started = Instant::now();
    let mut last_idle = started;
    let mut round = 0;
    while plan.more(round, started) {
        let mut faults = Vec::new();
        while faults.len() < FAULTS_PER_ROUND {
            if queue.is_empty() {
                queue = kinds.clone();
                rng.shuffle(&mut queue);
            }
            faults.extend(queue.pop());
        }
        run.round(&mut rng, &faults);
        round += 1;
        if start_usage.is_none() {
            let usage = idle_usage(&run.stand);
            println!("steady worker after the warm-up: {usage:?}");
            start_usage = Some(usage);
            last_idle = Instant::now();
        } else if plan.soak.is_some() && last_idle.elapsed() >= IDLE_EVERY {
            // The soak's idle readings: whether what stays after the chaos
            // grows with time (the busy curve mixes in running attempts).
            let usage = idle_usage(&run.stand);
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            println!("steady worker idle after {minutes:.1} min: {usage:?}");
            last_idle = Instant::now();
        }
    }
    let start_usage = start_usage.expect("at least one round of faults ran");

    // The last life: opened once more, writes, compacts, settles, checks.
    run.tally.reopens += 1;
    run.bounded(5_000);
    let end_usage = idle_usage(&run.stand);
    run.series.record(run.stand.steady_pid());
    println!("steady worker at the end: {end_usage:?}");

    let steady_succeeded = worker_stat(&run.stand.steady)["counters"]["succeeded"]
        .as_u64()
        .expect("succeeded counter");
    let victim_succeeded = run.injector.victim_total(&run.stand);
    let ssts = final_check(&run.stand, &run.expected, &identities);
    run.tally.print(
        &run.injector.counts,
        &run.injector.missed,
        (steady_succeeded, victim_succeeded),
        ssts,
        run.injector.disk_full_failures,
    );
    let zip = &worker_stat(&run.stand.steady)["zipserver"];
    if multi_process() {
        println!(
            "  steady worker's zipserver: {} blocks compressed there, {} in the child, {} restarts",
            zip["counts"]["remote_blocks"],
            zip["counts"]["fallback_blocks"],
            zip["sidecar"]["restarts"]
        );
    }
    if let (Some(min), Some(max)) = (
        run.series.points.iter().map(|p| p.1.rss_kib).min(),
        run.series.points.iter().map(|p| p.1.rss_kib).max(),
    ) {
        println!("  steady worker's RSS over the run: {min} to {max} KiB");
    }

    if plan.soak.is_some() {
        let out = std::env::var("FARM_SOAK_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir().join("farm-chaos-soak"));
        std::fs::create_dir_all(&out).expect("soak output dir");
        let mode = if multi_process() {
            "multi-process"
        } else {
            "in-process"
        };
        let csv = out.join(format!("chaos-soak-{mode}.csv"));
        let svg = out.join(format!("chaos-soak-{mode}.svg"));
        run.series.write_csv(&csv).expect("CSV written");
        plot::draw(
            &svg,
            &run.series,
            &format!("steady worker under chaos ({mode})"),
        )
        .expect("plot drawn");
        println!("soak samples: {} and {}", csv.display(), svg.display());
    }

    // Compactions really ran on the farm.
    assert!(run.tally.remote_installed > 0, "{:?}", run.tally);
    assert!(
        steady_succeeded > 0 && victim_succeeded > 0,
        "both workers compacted"
    );
    assert!(ssts.0 > 0, "live SSTs carry a worker's identity: {ssts:?}");
    // The steady worker compacted again once its disk was freed.
    let after_fill = run
        .injector
        .succeeded_after_disk_full
        .expect("the disk was filled");
    assert!(
        steady_succeeded > after_fill,
        "the steady worker compacted after its disk was freed ({after_fill} then {steady_succeeded})"
    );
    // With children, the zipserver did the compression work.
    if multi_process() {
        assert!(zip["counts"]["remote_blocks"].as_u64() > Some(0), "{zip}");
    }
    // Every kind of fault hit something.
    for k in kinds {
        assert!(
            run.injector.counts.get(&k).copied().unwrap_or(0) > 0,
            "{} was never injected: {:?}",
            k.name(),
            run.injector.missed
        );
    }
    // The steady worker gave back what the chaos took.
    assert!(
        resources::within(start_usage.rss_kib, end_usage.rss_kib, 10),
        "RSS {} KiB after the run, {} KiB before",
        end_usage.rss_kib,
        start_usage.rss_kib
    );
    assert!(
        resources::within(start_usage.fds, end_usage.fds, 10),
        "{} open files after the run, {} before",
        end_usage.fds,
        start_usage.fds
    );

    // Every process of the run ends with it.
    let left = run.stand.shutdown();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
