//! A worker's output that is damaged between the worker finishing and the
//! hoster installing it is never installed: the hoster checks every output
//! file (present, exact size, block checksums) and compacts locally instead.
//!
//! The damage is done by a proxy between hoster and worker: when it forwards
//! a `/probe` answer that says `done`, it first corrupts, truncates or
//! removes an SST in that attempt's output directory.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DB};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipBytes,
    Truncate,
    Remove,
}

fn damage_one_sst(dir: &Path, damage: Damage) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let Some(sst) = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
    else {
        return false;
    };
    match damage {
        Damage::FlipBytes => {
            let mut bytes = std::fs::read(&sst).unwrap();
            let mid = bytes.len() / 3;
            for b in &mut bytes[mid..mid + 64] {
                *b ^= 0x5a;
            }
            std::fs::write(&sst, bytes).unwrap();
        }
        Damage::Truncate => {
            let len = std::fs::metadata(&sst).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&sst)
                .unwrap()
                .set_len(len - 100)
                .unwrap();
        }
        Damage::Remove => std::fs::remove_file(&sst).unwrap(),
    }
    true
}

/// Forwards hoster requests to the worker and damages outputs on `done`.
struct DamagingProxy {
    addr: String,
    damaged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DamagingProxy {
    fn start(worker: String, outputs: PathBuf, damage: Damage) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let damaged = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (damaged, stop) = (damaged.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => forward(conn, &worker, &outputs, damage, &damaged),
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            }
        });
        DamagingProxy {
            addr,
            damaged,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DamagingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    conn.set_nonblocking(false).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().ok())
        })
        .flatten()
        .unwrap_or(0);
    while data.len() < head_end + len {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((path, data[head_end..head_end + len].to_vec()))
}

fn forward(mut conn: TcpStream, worker: &str, outputs: &Path, damage: Damage, damaged: &AtomicU64) {
    let Some((path, body)) = read_request(&mut conn) else {
        return;
    };
    let (status, answer) = match ureq::post(&format!("{worker}{path}")).send_bytes(&body) {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(_) => return,
    };
    if path == "/probe" && answer.contains("\"done\"") {
        let key: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let job_id = key["job_id"].as_u64().unwrap();
        let dir = outputs.join(format!(
            "job-{:05}-{:02}-att-{:02}",
            job_id >> 32,
            job_id & 0xffff_ffff,
            key["attempt"].as_u64().unwrap()
        ));
        if damage_one_sst(&dir, damage) {
            damaged.fetch_add(1, Ordering::SeqCst);
        }
    }
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = conn.write_all(reply.as_bytes());
}

fn damaged_outputs_are_never_installed(damage: Damage) {
    let d = dirs("db");
    let (root, db_path) = (&d.root, &d.db);
    let worker = start_worker(d.tmp.path(), &[]);
    let proxy = DamagingProxy::start(
        worker.base_url(),
        db_path.join(farm::hoster::service::OUTPUT_SUBDIR),
        damage,
    );
    let params = params(
        root,
        &[format!("http://{}", proxy.addr)],
        serde_json::json!({}),
    );
    let cfs = || vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(db_path, small_options(), cfs(), &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 20_000,
        seed: 31,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &spec).expect("no write fails");
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
    model
        .write(&hoster.db, cf, &WorkloadSpec { seed: 32, ..spec })
        .expect("writes go on");
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));

    // Every attempt the worker finished has been judged by the hoster.
    let succeeded = || {
        worker_stat(&worker)["counters"]["succeeded"]
            .as_u64()
            .unwrap()
    };
    eventually("the hoster judged every finished attempt", || {
        let s = hoster.farm.stats();
        s.fallbacks["verify_failed"] + s.remote_installed == succeeded()
    });
    let stats = hoster.farm.stats();
    let damaged = proxy.damaged.load(Ordering::SeqCst);
    let succeeded = succeeded();
    println!("{damage:?}: damaged {damaged}, worker succeeded {succeeded}, hoster {stats:?}");
    assert!(damaged > 0, "outputs were damaged");
    assert_eq!(
        damaged, succeeded,
        "every remote result was damaged before the hoster saw it"
    );
    assert_eq!(
        stats.fallbacks["verify_failed"], damaged,
        "each damaged result fell back"
    );
    assert_eq!(stats.remote_installed, 0, "nothing damaged was installed");

    // Reopened, every SST is sound and the data is the model's.
    let Hoster { db, opts, farm, .. } = hoster;
    drop((db, farm));
    let db = DB::open_cf_descriptors(&opts, db_path, cfs()).unwrap();
    for f in db.live_files().unwrap() {
        let path = db_path.join(f.name.trim_start_matches('/'));
        farm::rocks::sst::verify_checksums(&path).expect("installed SSTs are sound");
    }
    let cf = db.cf_handle("default").unwrap();
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
}

#[test]
fn corrupted_output_is_not_installed() {
    damaged_outputs_are_never_installed(Damage::FlipBytes);
}

#[test]
fn truncated_output_is_not_installed() {
    damaged_outputs_are_never_installed(Damage::Truncate);
}

#[test]
fn missing_output_is_not_installed() {
    damaged_outputs_are_never_installed(Damage::Remove);
}
