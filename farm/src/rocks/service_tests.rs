//! The bridge with a real DB: when it overrides a service's answer, the
//! service hears of it through `release`, and RocksDB compacts locally.

use super::*;
use rocksdb::DB;
use std::sync::Mutex;

/// What the test service does with the jobs RocksDB offers it.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Schedules every job under an id RocksDB cannot take (a NUL byte).
    IdWithNul,
    /// Schedules every job, then panics in `wait`.
    WaitPanics,
}

struct Service {
    behaviour: Behaviour,
    scheduled: Mutex<Vec<String>>,
    released: Mutex<Vec<String>>,
    installed: Mutex<Vec<String>>,
}

impl CompactionService for Service {
    fn schedule(&self, info: &JobInfo, _input: &[u8]) -> ScheduleAnswer {
        let id = match self.behaviour {
            Behaviour::IdWithNul => format!("job\0{}", info.job_id),
            Behaviour::WaitPanics => format!("job-{}", info.job_id),
        };
        self.scheduled.lock().unwrap().push(id.clone());
        ScheduleAnswer::Scheduled(id)
    }

    fn wait(&self, scheduled_job_id: &str) -> WaitAnswer {
        panic!("wait for {scheduled_job_id} panics");
    }

    fn cancel_awaiting(&self) {}

    fn on_installation(&self, scheduled_job_id: &str, _status: InstallStatus) {
        self.installed
            .lock()
            .unwrap()
            .push(scheduled_job_id.to_owned());
    }

    fn release(&self, scheduled_job_id: &str) {
        self.released
            .lock()
            .unwrap()
            .push(scheduled_job_id.to_owned());
    }
}

/// Three overlapping flushes and a full compaction through a service that
/// behaves as `behaviour`; returns the service after the DB closed.
fn compact_through(behaviour: Behaviour) -> Arc<Service> {
    let tmp = tempfile::tempdir().unwrap();
    let service = Arc::new(Service {
        behaviour,
        scheduled: Mutex::default(),
        released: Mutex::default(),
        installed: Mutex::default(),
    });
    let mut o = Options::default();
    o.create_if_missing(true);
    install(&mut o, service.clone());
    {
        let db = DB::open(&o, tmp.path()).unwrap();
        for round in 0..3u32 {
            for k in 0..200u32 {
                db.put(format!("key{k:04}"), format!("v{round}")).unwrap();
            }
            db.flush().unwrap();
        }
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        let files: u64 = db
            .property_int_value("rocksdb.num-files-at-level0")
            .unwrap()
            .unwrap_or(99);
        assert_eq!(files, 0, "the compaction ran (locally)");
        for k in (0..200u32).step_by(37) {
            let v = db.get(format!("key{k:04}")).unwrap();
            assert_eq!(v.as_deref(), Some(&b"v2"[..]));
        }
        let errors = db.property_int_value("rocksdb.background-errors");
        assert_eq!(errors.unwrap(), Some(0));
    }
    service
}

#[test]
fn an_id_rocksdb_cannot_take_is_released() {
    let s = compact_through(Behaviour::IdWithNul);
    let scheduled = s.scheduled.lock().unwrap().clone();
    assert!(!scheduled.is_empty(), "RocksDB offered the compaction");
    assert_eq!(*s.released.lock().unwrap(), scheduled);
    assert!(s.installed.lock().unwrap().is_empty());
}

#[test]
fn a_wait_that_panics_is_released() {
    let s = compact_through(Behaviour::WaitPanics);
    let scheduled = s.scheduled.lock().unwrap().clone();
    assert!(!scheduled.is_empty(), "RocksDB offered the compaction");
    assert_eq!(*s.released.lock().unwrap(), scheduled);
    assert!(s.installed.lock().unwrap().is_empty());
}
