//! Scenarios where the remote compaction succeeds: automatic and manual
//! compactions, subcompactions, snapshots, ingested range tombstones, and
//! options changed while a job waits.

use super::setup::*;
use crate::fault_proxy::Fault;
use farm::rocks::serialized::InputInfo;
use rocksdb::statistics::Ticker;
use rocksdb::{DBCompactionStyle, SstFileWriter};

#[test]
fn basic_compactions() {
    let s = Scenario::plain(current_options());
    s.generate_test_data();
    s.wait();
    s.verify_test_data();

    // GetCompactionNum() >= 1; the final job status is kSuccess.
    let c = s.settled_counts();
    println!("{c:?}");
    assert!(c.installed >= 1, "compactions ran remotely: {c:?}");
    assert_eq!(c.installed, c.worker_succeeded, "both sides count them");
    assert_eq!(c.local, 0, "every compaction ran remotely: {c:?}");

    // Compaction statistics are recorded on the remote side only.
    let remote_written = s.ticker(Ticker::RemoteCompactWriteBytes);
    assert!(c.worker_bytes_written >= 1);
    assert_eq!(s.ticker(Ticker::CompactWriteBytes), 0);
    assert_eq!(remote_written, c.worker_bytes_written);
    assert!(s.ticker(Ticker::RemoteCompactReadBytes) >= 1);

    // The results the worker reported (my_cs->GetResult()).
    let results = s.proxy.results();
    assert_eq!(results.len() as u64, c.installed);
    for r in &results {
        assert_eq!(r.error, None);
        assert!(r.stats.micros >= 1 && r.stats.cpu_micros >= 1, "{r:?}");
        assert_eq!(r.output_files.len() as u64, r.stats.num_output_files);
        let total: u64 = r.output_files.iter().map(|f| f.size).sum();
        assert_eq!(total, r.bytes_written, "{r:?}");
        assert!(r.stats.is_remote_compaction);
        // As in the original: OpenAndCompact runs every job as a manual
        // compaction of the listed files.
        assert!(r.stats.is_manual_compaction);
        assert!(!r.stats.is_full_compaction);
    }
    assert_eq!(
        results.iter().map(|r| r.bytes_written).sum::<u64>(),
        remote_written
    );

    // A failing remote compaction: the original's DB reports Aborted; here
    // the hoster compacts locally and every write goes on.
    s.proxy.set_fault(Fault::ProbeFailed);
    for i in 0..10 {
        for j in 0..10 {
            let id = i * 20 + j * 2;
            s.put("default", &key(id), &format!("value_new{id}"));
        }
        s.flush("default");
        s.wait();
    }
    let c = s.settled_counts();
    assert!(c.fallbacks["remote_failed"] >= 1, "{c:?}");
    assert_eq!(c.fallbacks["remote_failed"], s.proxy.injected());

    // Reopened: every table opens and passes its checksums (the original
    // counts passed unique-id verifications), those the worker wrote carry
    // its identity, and the data is intact.
    let identity = s.worker_identity();
    let remote_written_files = s
        .live_ssts("cf_1")
        .into_iter()
        .filter(|(_, id)| *id == identity)
        .count();
    assert!(remote_written_files > 0, "cf_1 holds the worker's output");
    let (db, d) = s.close();
    for f in db.live_files().expect("live files") {
        farm::rocks::sst::verify_checksums(&d.db.join(f.name.trim_start_matches('/')))
            .expect("every table is sound");
    }
    verify_test_data_in(&db);
}

#[test]
fn manual_compaction() {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    let s = Scenario::plain(o);
    s.generate_test_data();

    let mut installed = 0;
    for (start, end) in [
        (Some(15), Some(45)),
        (Some(120), None),
        (None, Some(92)),
        (None, None),
    ] {
        s.compact_range("default", start, end);
        let c = s.settled_counts();
        assert!(
            c.installed > installed,
            "CompactRange({start:?}, {end:?}) ran remotely: {c:?}"
        );
        installed = c.installed;
        s.verify_test_data();
    }
    let last = s.proxy.results().pop().expect("a result");
    assert_eq!(last.error, None);
    assert!(last.stats.is_manual_compaction && last.stats.is_remote_compaction);
    // The job info at schedule (and wait) names the column family.
    assert_eq!(s.proxy.jobs().last().expect("a job")["cf_name"], "default");

    // A non-default column family.
    s.compact_range("cf_1", None, None);
    let c = s.settled_counts();
    assert!(c.installed > installed);
    let last = s.proxy.results().pop().expect("a result");
    assert!(last.stats.is_manual_compaction && last.stats.is_remote_compaction);
    assert_eq!(s.proxy.jobs().last().expect("a job")["cf_name"], "cf_1");
    assert_eq!(c.local, 0, "{c:?}");
}

#[test]
fn sub_compaction() {
    let mut o = current_options();
    o.set_max_subcompactions(10);
    o.set_target_file_size_base(1 << 10);
    o.set_disable_auto_compactions(true);
    let s = Scenario::plain(o);
    s.generate_test_data();
    s.verify_test_data();
    let before = s.settled_counts();
    s.compact_range("default", None, None);
    s.verify_test_data();
    let c = s.settled_counts();
    // More than one remote job for the compaction: its subcompactions.
    assert!(c.installed - before.installed >= 2, "{c:?}");
    let mut subs: Vec<u64> = s
        .proxy
        .jobs()
        .iter()
        .map(|j| j["job_id"].as_u64().expect("job_id") & 0xffff_ffff)
        .collect();
    subs.sort_unstable();
    subs.dedup();
    assert!(subs.len() >= 2, "several subcompaction ids: {subs:?}");
    assert_eq!(c.local, 0, "{c:?}");
}

#[test]
fn snapshot() {
    let s = Scenario::plain(current_options());
    s.put("default", &key(1), "value1");
    s.put("default", &key(2), "value1");
    let snap = s.hoster.db.snapshot();
    s.flush("default");
    s.put("default", &key(1), "value2");
    s.put("default", &key(3), "value2");
    s.flush("default");
    s.compact_range("default", None, None);
    let c = s.settled_counts();
    assert!(c.installed >= 1, "{c:?}");
    assert_eq!(c.local, 0);
    let input = InputInfo::parse(&input_of(&s.proxy.jobs()[0])).expect("input parses");
    assert!(input.snapshots >= 1, "the job carried the snapshot");
    let cf = s.cf("default");
    assert_eq!(
        snap.get_cf(cf, key(1)).expect("read"),
        Some(b"value1".to_vec())
    );
    assert_eq!(s.get("default", &key(1)).as_deref(), Some("value2"));
}

#[test]
fn standalone_delete_range_tombstone_optimization() {
    for style in [DBCompactionStyle::Level, DBCompactionStyle::Universal] {
        let mut o = current_options();
        o.set_compaction_style(style);
        let s = Scenario::plain(o.clone());
        let sst = |name: &str, fill: &dyn Fn(&mut SstFileWriter)| {
            let path = s.d.tmp.path().join(name);
            let mut w = SstFileWriter::create(&o);
            w.open(&path).expect("sst opens");
            fill(&mut w);
            w.finish().expect("sst finishes");
            path
        };
        let ingest = |files: Vec<std::path::PathBuf>| {
            s.hoster
                .db
                .ingest_external_file(files)
                .expect("ingestion succeeds")
        };
        ingest(vec![
            sst("file1.sst", &|w| {
                w.put("a", "a1").unwrap();
                w.put("b", "b1").unwrap();
            }),
            sst("file2.sst", &|w| {
                w.put("x", "x1").unwrap();
                w.put("y", "y1").unwrap();
            }),
        ]);
        for (k, v) in [("a", "a1"), ("b", "b1"), ("x", "x1"), ("y", "y1")] {
            assert_eq!(s.get("default", k).as_deref(), Some(v));
        }
        assert_eq!(s.files_per_level("default"), "0,0,0,0,0,0,2");
        let before = s.settled_counts();

        // One file deleting the old range, two with the new data.
        ingest(vec![
            sst("file2b.sst", &|w| w.delete_range("a", "z").unwrap()),
            sst("file3.sst", &|w| {
                w.put("a", "a2").unwrap();
                w.put("b", "b2").unwrap();
            }),
            sst("file4.sst", &|w| {
                w.put("x", "x2").unwrap();
                w.put("y", "y2").unwrap();
            }),
        ]);
        s.wait();
        let c = s.settled_counts();
        assert!(c.installed > before.installed, "{style:?}: {c:?}");
        assert_eq!(c.local, 0, "{style:?}: {c:?}");
        let last = s.proxy.results().pop().expect("a result");
        assert_eq!(last.error, None);
        assert!(last.stats.is_remote_compaction);
        // Universal compaction drops the input files the standalone range
        // tombstone covers without reading them (RocksDB counts them as
        // filtered); leveled compaction reads all eight records.
        let read = last.stats.num_input_records;
        match style {
            DBCompactionStyle::Universal => assert!(read <= 4, "covered files were read: {read}"),
            _ => assert_eq!(read, 8, "{style:?}: every input file is read"),
        }
        for (k, v) in [("a", "a2"), ("b", "b2"), ("x", "x2"), ("y", "y2")] {
            assert_eq!(s.get("default", k).as_deref(), Some(v), "{style:?}");
        }
    }
}

#[test]
fn preserved_options_remote_compaction() {
    let mut o = current_options();
    o.set_level_zero_file_num_compaction_trigger(2);
    o.set_disable_auto_compactions(true);
    let s = Scenario::plain(o);
    s.generate_test_data();
    for i in 0..2 {
        for j in 0..10 {
            s.put("default", &format!("foo{}", i * 10 + j), &"x".repeat(1024));
        }
        s.flush("default");
    }

    // The job waits in the proxy while the hoster changes its options twice.
    s.proxy.set_fault(Fault::HoldSubmit);
    std::thread::scope(|scope| {
        let compaction = scope.spawn(|| s.compact_range("default", None, None));
        crate::harness::eventually("a job is held", || !s.proxy.held().is_empty());
        let input = InputInfo::parse(&input_of(&s.proxy.held()[0])).expect("input parses");
        for trigger in ["4", "5"] {
            s.hoster
                .db
                .set_options_cf(
                    s.cf("default"),
                    &[("level0_file_num_compaction_trigger", trigger)],
                )
                .expect("set_options succeeds");
        }
        // The OPTIONS file the job was planned with is preserved, newer
        // ones exist, and it holds the old value.
        let latest = options_file_numbers(&s.d.db).into_iter().max();
        assert!(latest > Some(input.options_file_number));
        let planned =
            s.d.db
                .join(format!("OPTIONS-{:06}", input.options_file_number));
        let text = std::fs::read_to_string(&planned).expect("the planned OPTIONS file exists");
        assert!(text.contains("level0_file_num_compaction_trigger=2"));
        s.proxy.set_fault(Fault::None);
        compaction.join().expect("compaction thread");
    });
    let c = s.settled_counts();
    assert!(c.installed >= 1, "{c:?}");
    assert_eq!(c.local, 0, "{c:?}");
    let last = s.proxy.results().pop().expect("a result");
    assert!(last.stats.is_manual_compaction && last.stats.is_remote_compaction);
    s.verify_test_data();
}

/// The serialized `CompactionServiceInput` of a job the proxy recorded.
fn input_of(job: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(job["compaction_service_input"].as_str().expect("input"))
        .expect("base64 input")
}

fn options_file_numbers(db: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(db)
        .expect("db dir")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("OPTIONS-")?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn verify_stats() {
    // The original's EventVerifier reads the job stats on the hoster's
    // listener; here the same stats are read from the result the worker
    // reported, and the input files from the job it was sent.
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    let s = Scenario::plain(o);
    s.generate_test_data();
    s.compact_range("default", Some(0), Some(1));
    s.verify_test_data();
    let c = s.settled_counts();
    assert_eq!(c.installed, 1, "{c:?}");
    assert_eq!(c.local, 0);
    let job = s.proxy.jobs().pop().expect("a job");
    let input = InputInfo::parse(&input_of(&job)).expect("input parses");
    let r = s.proxy.results().pop().expect("a result");
    println!("{input:?} {r:?}");
    assert_eq!(input.input_files.len(), 3, "expected_num_input_files");
    assert_eq!(r.stats.num_input_records, 30);
    assert_eq!(r.stats.num_output_records, 20);
    assert_eq!(r.stats.num_output_files, 1);
    assert!(r.stats.micros > 0 && r.stats.cpu_micros > 0);
    assert!(r.bytes_read > 0 && r.bytes_written > 0);
    assert!(r.stats.is_remote_compaction && r.stats.is_manual_compaction);
    assert!(!r.stats.is_full_compaction);
}
