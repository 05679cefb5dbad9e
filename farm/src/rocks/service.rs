//! The hoster side: a Rust [`CompactionService`] installed onto
//! `rocksdb::Options` through RocksDB's C API.
//!
//! The answers a service can give are restricted by type to the two that are
//! safe for the hoster: run remotely ([`ScheduleAnswer::Scheduled`],
//! [`WaitAnswer::Success`]) or run locally (`UseLocal`). RocksDB turns
//! kFailure and kAborted into background errors that stop the hoster's
//! writes, so the bridge never produces them; a panic in a callback is caught
//! and answered with kUseLocal.
//!
//! When the bridge answers kUseLocal in place of the service's answer (an id
//! it cannot pass to RocksDB, a result it cannot allocate, a panic in
//! `wait`), RocksDB never calls `wait` or `on_installation` for that job: the
//! bridge then calls [`CompactionService::release`], so the service frees
//! what it holds for the job.

use librocksdb_sys as sys;
use rocksdb::{AsRawPtr, Options};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const STATUS_SUCCESS: c_int = sys::rocksdb_compactionservice_jobstatus_success as c_int;
const STATUS_USE_LOCAL: c_int = sys::rocksdb_compactionservice_jobstatus_use_local as c_int;

/// What RocksDB tells the service about a compaction it wants to offload
/// (`CompactionServiceJobInfo`; `priority` is `Env::Priority`,
/// `compaction_reason` is `CompactionReason`, as numbers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobInfo {
    pub db_name: String,
    pub db_id: String,
    pub db_session_id: String,
    pub cf_name: String,
    pub cf_id: u32,
    /// `db_job_id << 32 | sub_job_id`.
    pub job_id: u64,
    pub priority: i32,
    pub compaction_reason: i32,
    pub base_input_level: i32,
    pub output_level: i32,
    pub is_full_compaction: bool,
    pub is_manual_compaction: bool,
    pub is_bottommost_level: bool,
}

impl JobInfo {
    /// RocksDB's DB-wide job number.
    pub fn db_job_id(&self) -> u32 {
        (self.job_id >> 32) as u32
    }

    /// The subcompaction's index within the job.
    pub fn sub_job_id(&self) -> u32 {
        self.job_id as u32
    }
}

/// The answer to `schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleAnswer {
    /// The job runs remotely; RocksDB calls `wait` with this id.
    Scheduled(String),
    /// RocksDB runs the compaction itself.
    UseLocal,
}

/// The answer to `wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitAnswer {
    /// The serialized `CompactionServiceResult`, with every output file
    /// present and verified at its `output_path`: RocksDB installs them.
    Success(Vec<u8>),
    /// RocksDB runs the compaction itself.
    UseLocal,
}

/// What RocksDB did with a scheduled job, told through `on_installation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStatus {
    Success,
    Failure,
    Aborted,
    UseLocal,
    Unknown(i32),
}

impl From<c_int> for InstallStatus {
    fn from(v: c_int) -> Self {
        match v as u32 {
            sys::rocksdb_compactionservice_jobstatus_success => InstallStatus::Success,
            sys::rocksdb_compactionservice_jobstatus_failure => InstallStatus::Failure,
            sys::rocksdb_compactionservice_jobstatus_aborted => InstallStatus::Aborted,
            sys::rocksdb_compactionservice_jobstatus_use_local => InstallStatus::UseLocal,
            _ => InstallStatus::Unknown(v),
        }
    }
}

/// A remote-compaction service. Callbacks run on RocksDB's background
/// threads and may block.
pub trait CompactionService: Send + Sync + 'static {
    fn schedule(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer;
    fn wait(&self, scheduled_job_id: &str) -> WaitAnswer;
    /// RocksDB is closing or pausing: every `wait` in progress should return
    /// soon (with `UseLocal`).
    fn cancel_awaiting(&self);
    fn on_installation(&self, scheduled_job_id: &str, status: InstallStatus);
    /// The bridge answered RocksDB kUseLocal in place of this service's
    /// answer for `scheduled_job_id` (from `schedule` or `wait`): RocksDB
    /// compacts locally and will never mention the job again. Release
    /// everything held for it (and stop its remote run).
    fn release(&self, scheduled_job_id: &str);
}

/// Installs `service` onto `options`. Every call creates a new RocksDB
/// service object: RocksDB owns it through a `shared_ptr` of this `Options`
/// (and of its copies), which drops the Rust service when the last goes.
pub fn install(options: &mut Options, service: Arc<dyn CompactionService>) {
    let state = Box::into_raw(Box::new(service)).cast::<c_void>();
    let name = CString::new("compaction-farm").expect("literal has no NUL");
    // SAFETY: the callbacks match the C signatures; `state` is a leaked Box
    // that `destroy` frees exactly once when RocksDB drops the service.
    // RocksDB copies `name` into the service object.
    unsafe {
        let raw = sys::rocksdb_compactionservice_create(
            state,
            Some(destroy),
            Some(schedule),
            name.as_ptr(),
            Some(wait),
            Some(cancel_awaiting),
            Some(on_installation),
        );
        sys::rocksdb_options_set_compaction_service(options.as_raw_ptr(), raw);
    }
}

/// # Safety
/// `state` is the pointer `install` leaked; called once by RocksDB.
unsafe extern "C" fn destroy(state: *mut c_void) {
    let _ = catch_unwind(|| {
        // SAFETY: the Box leaked by `install`, reclaimed exactly once.
        drop(unsafe { Box::from_raw(state.cast::<Arc<dyn CompactionService>>()) });
    });
}

/// # Safety
/// `state` is live until `destroy`.
unsafe fn service<'a>(state: *mut c_void) -> &'a dyn CompactionService {
    // SAFETY: per the caller, `state` points to the Arc leaked by `install`.
    unsafe { &**state.cast::<Arc<dyn CompactionService>>() }
}

fn use_local_response() -> *mut sys::rocksdb_compactionservice_scheduleresponse_t {
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: kUseLocal is a valid status, so no error is set; should one be,
    // it is freed below.
    let r = unsafe {
        sys::rocksdb_compactionservice_scheduleresponse_create_with_status(
            STATUS_USE_LOCAL,
            &mut err,
        )
    };
    if !err.is_null() {
        // SAFETY: a malloc'ed message from RocksDB.
        unsafe { libc::free(err.cast()) };
    }
    r
}

/// Tells the service that the bridge overrode its answer for `id`.
///
/// # Safety
/// `state` is live until `destroy`.
unsafe fn release(state: *mut c_void, id: &str) {
    tracing::warn!(
        job = id,
        "answering RocksDB kUseLocal in place of the service"
    );
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the caller.
        unsafe { service(state) }.release(id)
    }));
}

/// # Safety
/// Called by RocksDB with the `state` of `install`, a live job info and
/// `input_len` readable bytes at `input`.
unsafe extern "C" fn schedule(
    state: *mut c_void,
    info: *const sys::rocksdb_compactionservice_jobinfo_t,
    input: *const c_char,
    input_len: usize,
) -> *mut sys::rocksdb_compactionservice_scheduleresponse_t {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: RocksDB passes a live job info and input for the call.
        let (info, input) = unsafe { (job_info(info), byte_slice(input, input_len)) };
        // SAFETY: `state` is live while RocksDB holds the service.
        unsafe { service(state) }.schedule(&info, input)
    }));
    match answer {
        Ok(ScheduleAnswer::Scheduled(id)) => scheduled_response(&id).unwrap_or_else(|| {
            // SAFETY: `state` is live while RocksDB holds the service.
            unsafe { release(state, &id) };
            use_local_response()
        }),
        // A panic still answers kUseLocal: NULL would count as kFailure.
        Ok(ScheduleAnswer::UseLocal) | Err(_) => use_local_response(),
    }
}

/// RocksDB's response for a job scheduled as `id`, or `None` when RocksDB
/// cannot take it (an id with a NUL byte, or RocksDB refused).
fn scheduled_response(id: &str) -> Option<*mut sys::rocksdb_compactionservice_scheduleresponse_t> {
    let id = CString::new(id).ok()?;
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid status; RocksDB copies the id.
    let r = unsafe {
        sys::rocksdb_compactionservice_scheduleresponse_create(
            id.as_ptr(),
            STATUS_SUCCESS,
            &mut err,
        )
    };
    if !err.is_null() || r.is_null() {
        // SAFETY: a malloc'ed message from RocksDB (free(NULL) is fine).
        unsafe { libc::free(err.cast()) };
        if !r.is_null() {
            // SAFETY: a response RocksDB created and nobody else holds.
            unsafe { sys::rocksdb_compactionservice_scheduleresponse_t_destroy(r) };
        }
        return None;
    }
    Some(r)
}

/// `len` bytes at `p` as a slice (empty when `len` is 0, whatever `p`).
///
/// # Safety
/// When `len` > 0, `p` points to `len` bytes readable for `'a`.
unsafe fn byte_slice<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 || p.is_null() {
        return &[];
    }
    // SAFETY: per the caller.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
}

/// # Safety
/// Called by RocksDB with the `state` of `install`, a live NUL-terminated
/// id and live out-pointers.
unsafe extern "C" fn wait(
    state: *mut c_void,
    scheduled_job_id: *const c_char,
    result: *mut *mut c_char,
    result_len: *mut usize,
) -> c_int {
    // SAFETY: RocksDB passes a live NUL-terminated id for the call.
    let id = unsafe { CStr::from_ptr(scheduled_job_id) }.to_string_lossy();
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is live while RocksDB holds the service.
        unsafe { service(state) }.wait(&id)
    }));
    let status = match answer {
        // SAFETY: the out-pointers are live for the call.
        Ok(WaitAnswer::Success(bytes)) => unsafe { hand_result(&bytes, result, result_len) },
        Ok(WaitAnswer::UseLocal) => return STATUS_USE_LOCAL,
        Err(_) => STATUS_USE_LOCAL,
    };
    if status != STATUS_SUCCESS {
        // SAFETY: `state` is live while RocksDB holds the service.
        unsafe { release(state, &id) };
    }
    status
}

/// Gives RocksDB a `malloc`ed copy of `bytes` (RocksDB frees it with
/// `free()`). Returns kSuccess, or kUseLocal when there is no memory.
///
/// # Safety
/// `result` and `result_len` are live out-pointers.
unsafe fn hand_result(bytes: &[u8], result: *mut *mut c_char, result_len: *mut usize) -> c_int {
    // SAFETY: plain allocation; NULL is checked.
    let buf = unsafe { libc::malloc(bytes.len().max(1)) }.cast::<u8>();
    if buf.is_null() {
        return STATUS_USE_LOCAL;
    }
    // SAFETY: `buf` has room for `bytes.len()` bytes; the out pointers are
    // live per the caller.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        *result = buf.cast();
        *result_len = bytes.len();
    }
    STATUS_SUCCESS
}

/// # Safety
/// Called by RocksDB with the `state` of `install`.
unsafe extern "C" fn cancel_awaiting(state: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is live while RocksDB holds the service.
        unsafe { service(state) }.cancel_awaiting()
    }));
}

/// # Safety
/// Called by RocksDB with the `state` of `install` and a live
/// NUL-terminated id.
unsafe extern "C" fn on_installation(
    state: *mut c_void,
    scheduled_job_id: *const c_char,
    status: c_int,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: RocksDB passes a live NUL-terminated id for the call.
        let id = unsafe { CStr::from_ptr(scheduled_job_id) }.to_string_lossy();
        // SAFETY: `state` is live while RocksDB holds the service.
        unsafe { service(state) }.on_installation(&id, status.into())
    }));
}

/// # Safety
/// `info` is a live job info for the duration of the call.
unsafe fn job_info(info: *const sys::rocksdb_compactionservice_jobinfo_t) -> JobInfo {
    let text = |f: unsafe extern "C" fn(
        *const sys::rocksdb_compactionservice_jobinfo_t,
        *mut usize,
    ) -> *const c_char| {
        let mut len = 0usize;
        // SAFETY: the getter returns a pointer into `info` of `len` bytes.
        unsafe {
            let p = f(info, &mut len);
            if p.is_null() {
                String::new()
            } else {
                String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len))
                    .into_owned()
            }
        }
    };
    // SAFETY: plain getters on a live job info.
    unsafe {
        JobInfo {
            db_name: text(sys::rocksdb_compactionservice_jobinfo_t_get_db_name),
            db_id: text(sys::rocksdb_compactionservice_jobinfo_t_get_db_id),
            db_session_id: text(sys::rocksdb_compactionservice_jobinfo_t_get_db_session_id),
            cf_name: text(sys::rocksdb_compactionservice_jobinfo_t_get_cf_name),
            cf_id: sys::rocksdb_compactionservice_jobinfo_t_get_cf_id(info),
            job_id: sys::rocksdb_compactionservice_jobinfo_t_get_job_id(info),
            priority: sys::rocksdb_compactionservice_jobinfo_t_get_priority(info),
            compaction_reason: sys::rocksdb_compactionservice_jobinfo_t_get_compaction_reason(info),
            base_input_level: sys::rocksdb_compactionservice_jobinfo_t_get_base_input_level(info),
            output_level: sys::rocksdb_compactionservice_jobinfo_t_get_output_level(info),
            is_full_compaction: sys::rocksdb_compactionservice_jobinfo_t_is_full_compaction(info)
                != 0,
            is_manual_compaction: sys::rocksdb_compactionservice_jobinfo_t_is_manual_compaction(
                info,
            ) != 0,
            is_bottommost_level: sys::rocksdb_compactionservice_jobinfo_t_is_bottommost_level(info)
                != 0,
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
