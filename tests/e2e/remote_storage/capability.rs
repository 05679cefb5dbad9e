//! The file endpoint's rules, against a real DB's snapshot: a token reads
//! its own job's readable files and nothing else, an expired one nothing;
//! a WAL, a non-input SST, a path leaving the job, a symlink are never
//! served; a push creates one output once, in the job's output directory
//! only; a revoked grant serves nothing and its snapshot is gone.

use farm::hoster::remote::capability::{GrantHold, Grants};
use farm::hoster::remote::endpoint::FileEndpoint;
use farm::hoster::remote::snapshot::JobSnapshot;
use farm::protocol::remote::{FileList, RemoteStorage};
use rocksdb::{Options, DB};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A DB with a few SSTs, a WAL and the options file, closed.
fn small_db(path: &Path) -> (Vec<String>, u64) {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_disable_auto_compactions(true);
    let db = DB::open(&o, path).unwrap();
    for round in 0..3u32 {
        for i in 0..200u32 {
            db.put(format!("k{round}-{i:04}"), vec![round as u8; 100])
                .unwrap();
        }
        db.flush().unwrap();
    }
    db.put("unflushed", "in the WAL").unwrap();
    drop(db);
    let mut ssts: Vec<String> = names(path)
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    ssts.sort();
    let options = names(path)
        .iter()
        .filter_map(|n| n.strip_prefix("OPTIONS-"))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .expect("an OPTIONS file");
    (ssts, options)
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

struct Job {
    storage: RemoteStorage,
    hold: GrantHold,
    out: PathBuf,
    snapshot_dir: PathBuf,
}

fn grant(
    grants: &Arc<Grants>,
    endpoint: &FileEndpoint,
    db: &Path,
    tag: &str,
    options: u64,
    inputs: &[String],
    valid: Duration,
) -> Job {
    let snapshot_dir = db.join(format!("farm-output/run/{tag}.in"));
    let out = db.join(format!("farm-output/run/{tag}"));
    std::fs::create_dir_all(&out).unwrap();
    let inputs: Vec<String> = inputs.iter().map(|n| format!("/{n}")).collect();
    let snapshot = JobSnapshot::take(db, &snapshot_dir, options, &inputs).unwrap();
    let (storage, hold) = grants
        .issue(endpoint.url(), snapshot, out.clone(), valid)
        .unwrap();
    Job {
        storage,
        hold,
        out,
        snapshot_dir,
    }
}

/// GET `url` with `token` (and a range): the status and the body.
fn get(url: &str, token: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut r = ureq::get(url).set("Authorization", &format!("Bearer {token}"));
    if let Some(range) = range {
        r = r.set("Range", range);
    }
    let resp = match r.call() {
        Ok(resp) => resp,
        Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, body)
}

fn put(url: &str, token: &str, body: &[u8]) -> u16 {
    match ureq::put(url)
        .set("Authorization", &format!("Bearer {token}"))
        .send_bytes(body)
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("PUT {url}: {e}"),
    }
}

#[test]
fn a_token_reads_its_own_job_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (ssts, options) = small_db(&db);
    assert_eq!(ssts.len(), 3, "{ssts:?}");
    let wal = names(&db)
        .into_iter()
        .find(|n| n.ends_with(".log"))
        .expect("a WAL");
    let grants = Arc::new(Grants::default());
    let endpoint =
        FileEndpoint::start("127.0.0.1:0".parse().unwrap(), None, grants.clone()).unwrap();
    let hour = Duration::from_secs(3600);
    let a = grant(&grants, &endpoint, &db, "a", options, &ssts[..1], hour);
    let b = grant(&grants, &endpoint, &db, "b", options, &ssts[1..2], hour);

    // Its own list: the input and the metadata readable, the other tables
    // by size only, no WAL.
    let (status, body) = get(&a.storage.files_url(), &a.storage.token, None);
    assert_eq!(status, 200);
    let list: FileList = serde_json::from_slice(&body).unwrap();
    let readable: Vec<&str> = list
        .files
        .iter()
        .filter(|f| f.readable)
        .map(|f| f.name.as_str())
        .collect();
    assert!(readable.contains(&ssts[0].as_str()) && readable.contains(&"CURRENT"));
    assert!(!readable.contains(&ssts[1].as_str()), "{readable:?}");
    assert!(list.files.iter().any(|f| f.name == ssts[1] && !f.readable));
    assert!(
        !list.files.iter().any(|f| f.name.ends_with(".log")),
        "{list:?}"
    );

    // Its own input, exactly the range asked for.
    let real = std::fs::read(db.join(&ssts[0])).unwrap();
    let (status, body) = get(
        &a.storage.file_url(&ssts[0]),
        &a.storage.token,
        Some("bytes=10-99"),
    );
    assert_eq!(status, 206);
    assert_eq!(body, real[10..100]);

    // Another job's file, with this job's token or under that job's id.
    let (status, body) = get(
        &b.storage.file_url(&ssts[1]),
        &a.storage.token,
        Some("bytes=0-9"),
    );
    assert_eq!(status, 401, "a's token on b's job");
    assert!(body.len() < 200 && !real.starts_with(&body[..body.len().min(10)]) || body.is_empty());
    let (status, _) = get(
        &a.storage.file_url(&ssts[1]),
        &a.storage.token,
        Some("bytes=0-9"),
    );
    assert_eq!(status, 404, "b's input is not a's file");
    let (status, _) = get(&b.storage.files_url(), &a.storage.token, None);
    assert_eq!(status, 401);

    // Never a WAL, a file outside the DB, a path, no token, a wrong token.
    for name in [
        wal.as_str(),
        "LOCK",
        "IDENTITY",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "..",
        "CURRENT%2F..",
    ] {
        let (status, _) = get(
            &a.storage.file_url(name),
            &a.storage.token,
            Some("bytes=0-9"),
        );
        assert_eq!(status, 404, "{name}");
    }
    let (status, _) = get(&a.storage.file_url("CURRENT"), "", Some("bytes=0-9"));
    assert_eq!(status, 401);
    let (status, _) = get(
        &a.storage.file_url("CURRENT"),
        &"0".repeat(64),
        Some("bytes=0-9"),
    );
    assert_eq!(status, 401);
    // No range, or one past the file: refused.
    let (status, _) = get(&a.storage.file_url("CURRENT"), &a.storage.token, None);
    assert_eq!(status, 416);
    let (status, _) = get(
        &a.storage.file_url("CURRENT"),
        &a.storage.token,
        Some("bytes=100000-100001"),
    );
    assert_eq!(status, 416);
    assert!(
        endpoint
            .counts()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 12
    );

    // Revoked with its attempt: nothing served, the snapshot gone, the
    // DB's files kept.
    let Job {
        storage,
        hold,
        snapshot_dir,
        ..
    } = a;
    drop(hold);
    let (status, _) = get(
        &storage.file_url("CURRENT"),
        &storage.token,
        Some("bytes=0-1"),
    );
    assert_eq!(status, 404);
    assert!(!snapshot_dir.exists());
    assert!(db.join(&ssts[0]).exists());
    drop(b);
}

#[test]
fn an_expired_token_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (ssts, options) = small_db(&db);
    let grants = Arc::new(Grants::default());
    let endpoint =
        FileEndpoint::start("127.0.0.1:0".parse().unwrap(), None, grants.clone()).unwrap();
    let job = grant(
        &grants,
        &endpoint,
        &db,
        "x",
        options,
        &ssts[..1],
        Duration::ZERO,
    );
    let (status, _) = get(&job.storage.files_url(), &job.storage.token, None);
    assert_eq!(status, 401);
    let (status, _) = get(
        &job.storage.file_url(&ssts[0]),
        &job.storage.token,
        Some("bytes=0-9"),
    );
    assert_eq!(status, 401);
    assert_eq!(
        put(
            &job.storage.output_url("000100.sst"),
            &job.storage.token,
            b"x"
        ),
        401
    );
    assert!(!job.out.join("000100.sst").exists());
}

#[test]
fn a_symlinked_input_is_never_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (ssts, options) = small_db(&db);
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"not a file of the DB").unwrap();
    // An SST of the DB replaced by a symlink to a file outside it.
    std::fs::remove_file(db.join(&ssts[0])).unwrap();
    std::os::unix::fs::symlink(&secret, db.join(&ssts[0])).unwrap();
    let dir = db.join("farm-output/run/s.in");
    let e = JobSnapshot::take(&db, &dir, options, &[format!("/{}", ssts[0])]).unwrap_err();
    assert!(e.to_string().contains(&ssts[0]), "{e}");
    assert!(!dir.exists(), "nothing is left of a refused snapshot");
}

#[test]
fn a_push_creates_one_output_once_in_its_own_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let (ssts, options) = small_db(&db);
    let grants = Arc::new(Grants::default());
    let endpoint =
        FileEndpoint::start("127.0.0.1:0".parse().unwrap(), None, grants.clone()).unwrap();
    let hour = Duration::from_secs(3600);
    let a = grant(&grants, &endpoint, &db, "a", options, &ssts[..1], hour);
    let b = grant(&grants, &endpoint, &db, "b", options, &ssts[1..2], hour);
    let t = &a.storage.token;
    assert_eq!(put(&a.storage.output_url("000123.sst"), t, b"output"), 201);
    assert_eq!(std::fs::read(a.out.join("000123.sst")).unwrap(), b"output");
    assert_eq!(put(&a.storage.output_url("000123.sst"), t, b"again"), 409);
    assert_eq!(std::fs::read(a.out.join("000123.sst")).unwrap(), b"output");
    for name in [
        "CURRENT",
        "MANIFEST-000001",
        "000124.log",
        "..%2F000125.sst",
        "%2Ftmp%2F000126.sst",
        "x.sst",
    ] {
        assert_eq!(put(&a.storage.output_url(name), t, b"x"), 404, "{name}");
    }
    // a's token cannot push into b's directory.
    assert_eq!(put(&b.storage.output_url("000127.sst"), t, b"x"), 401);
    assert!(names(&b.out).is_empty());
    assert_eq!(names(&a.out), ["000123.sst"]);
    assert!(!db.join("000125.sst").exists() && !db.join("CURRENT.tmp").exists());
    assert_eq!(put(&a.storage.output_url("rpc.results"), t, b"r"), 201);
    assert_eq!(put(&a.storage.output_url("compact.done"), t, b"d"), 201);
}
