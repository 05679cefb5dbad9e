//! The worker's reader of a job against a real endpoint: bytes equal the
//! file's, each block fetched once, sequential reads fetched ahead in few
//! requests, a file the job may not read refused before any request.

use farm::hoster::remote::capability::Grants;
use farm::hoster::remote::endpoint::FileEndpoint;
use farm::hoster::remote::snapshot::JobSnapshot;
use farm::rocks::remote_fs::RemoteFiles;
use farm::worker::remote::cache::BLOCK;
use farm::worker::remote::source::RemoteSource;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_job_is_read_in_few_requests_and_only_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let input: Vec<u8> = (0..(3 * BLOCK + BLOCK / 2))
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(db.join("CURRENT"), "MANIFEST-000003\n").unwrap();
    std::fs::write(db.join("MANIFEST-000003"), vec![5u8; 300]).unwrap();
    std::fs::write(db.join("OPTIONS-000007"), "[Version]\n").unwrap();
    std::fs::write(db.join("000010.sst"), &input).unwrap();
    std::fs::write(db.join("000011.sst"), vec![1u8; 4096]).unwrap();
    let grants = Arc::new(Grants::default());
    let endpoint =
        FileEndpoint::start("127.0.0.1:0".parse().unwrap(), None, grants.clone()).unwrap();
    let snapshot = JobSnapshot::take(&db, &db.join("snap"), 7, &["/000010.sst".into()]).unwrap();
    let (storage, _hold) = grants
        .issue(
            endpoint.url(),
            snapshot,
            db.join("out"),
            Duration::from_secs(60),
        )
        .unwrap();

    let source = RemoteSource::open(&storage, &["000010.sst".into()]).unwrap();
    assert_eq!(source.size("000011.sst"), Some(4096), "listed by size");
    assert_eq!(source.size("000010.sst"), Some(input.len() as u64));
    assert_eq!(source.size("000012.log"), None);

    // The table's tail first (as RocksDB opens a table), then all of it in
    // order (as a compaction reads it).
    let mut tail = vec![0u8; 4096];
    let at = input.len() as u64 - 4096;
    assert_eq!(source.read_at("000010.sst", at, &mut tail).unwrap(), 4096);
    assert_eq!(tail, input[at as usize..]);
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 256 << 10];
    loop {
        let n = source
            .read_at("000010.sst", got.len() as u64, &mut chunk)
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got == input, "the bytes are the file's");
    let c = source.counts();
    println!("{c:?}");
    assert_eq!(c.input_bytes, input.len() as u64, "each block fetched once");
    assert!(c.requests <= 4, "read ahead: {c:?}");
    assert!(c.cache_hits > 0);

    // Not the job's to read: refused by the reader itself.
    let before = source.counts().requests;
    assert!(source.read_at("000011.sst", 0, &mut chunk).is_err());
    assert!(source.read_at("000012.log", 0, &mut chunk).is_err());
    assert_eq!(source.counts().requests, before, "no request sent");
    // Whole small files: the OPTIONS file and the pinned MANIFEST.
    assert_eq!(source.read_whole("OPTIONS-000007").unwrap(), b"[Version]\n");
    assert_eq!(source.read_whole("MANIFEST-000003").unwrap().len(), 300);
    assert!(source.counts().metadata_bytes >= 310);
    assert_eq!(
        endpoint
            .counts()
            .served_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        source.counts().input_bytes + source.counts().metadata_bytes
    );
}
