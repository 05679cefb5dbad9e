//! `dcompact-worker`: runs RocksDB compactions for hoster databases.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use anyhow::Context;
use clap::Parser;
use farm::worker::drain::{Drain, DrainCause};
use farm::worker::{config::WorkerConfig, server};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs RocksDB compactions for other processes' databases.
///
/// A hoster (a process using RocksDB with the compaction-farm client) POSTs
/// each compaction to /dcompact; the worker opens the hoster's DB files on
/// shared storage, compacts into the job's output directory and answers
/// /probe with RocksDB's result.
///
/// Configuration comes from environment variables (names below) over an
/// optional TOML file whose keys are the same names in lower case; the
/// environment wins. The first line on stdout is "listening on <ip:port>".
///
/// Environment:
///   LISTEN_ADDR               ip:port to listen on (default 0.0.0.0:8080; port 0 = any free port)
///   ADVERTISE_ADDR            host:port, or an http(s)://host:port/path URL (port and path optional),
///                             that hosters use to reach this worker (default, or self: the bound address)
///   WORKER_DB_ROOT            attempt directories (default /tmp/dcompact-worker)
///   DEL_WORKER_TEMP_DB        remove an attempt's directory when it ends (default false)
///   NFS_MOUNT_ROOT            hoster paths map to <root>/<instance_name>/... (default: same paths)
///   NFS_DYNAMIC_MOUNT         mount each instance's nfs_mnt_src on NFS_MOUNT_ROOT/<instance_name> (default false)
///   NFS_MOUNT_CACHE           idle mounts kept; least recently used unmounted beyond it (default 32)
///   MOUNT_TIMEOUT             a mount helper still running after this is killed (default 60s)
///   MOUNT_ALLOWED_TYPES       nfs_types a job may ask for; only nfs and nfs4 can be listed (default nfs,nfs4)
///   MOUNT_ALLOWED_OPTIONS     option names a job's nfs_mnt_opt may use, ','-separated (default: the usual
///                             NFS options: vers, proto, timeo, hard, rsize, nolock, sec, ro, noatime...);
///                             bind, remount, X-*, suid, dev, exec, helper... are never allowed;
///                             nosuid,nodev,noexec are always added
///   MAX_PARALLEL_COMPACTIONS  attempts running at once (default: number of CPUs)
///   MAX_WAITING_COMPACTIONS   attempts queued beyond that; more get 503 (default 2 x parallel)
///   RESULT_RETENTION          how long /probe still answers for a finished attempt (default 10m)
///   QUEUE_PROBE_TIMEOUT       a queued attempt no hoster probed for this long is cancelled (default 60s)
///   MAX_REQUEST_BYTES         largest request body (default 67108864)
///   MAX_ADMISSIONS            jobs admitted at once (mounting, reading CURRENT and OPTIONS); more get 503 (default 4)
///   HTTP_HEADER_TIMEOUT       a request head must be complete this long after accept, or after its first byte (default 10s)
///   HTTP_BODY_TIMEOUT         a request body must arrive this long after its head, else 408 (default 60s)
///   HTTP_IDLE_TIMEOUT         a kept-alive connection with no request is closed after this (default 30s)
///   MAX_CONNECTIONS           HTTP connections open at once; more wait until one closes
///                             (default 1024, or half the open-file limit when lower)
///   WORKER_AUTH_TOKEN         require "Authorization: Bearer <token>" on /dcompact and /shutdown
///   MULTI_PROCESS             run each attempt in its own child process (default false)
///   PLUGINS                   plugin .so files, ':'-separated: loaded in-process, or into each child
///   CHILD_MEMORY_LIMIT        a child's memory, e.g. 4G: its cgroup's limit (no swap beyond it), or RLIMIT_AS
///                             where no cgroup can be made; past it the kernel kills it: out_of_memory (default unlimited)
///   CHILD_MAX_PROCESSES       processes and threads in a child's cgroup (default 1024)
///   CHILD_CPU_WEIGHT          a child's cgroup's CPU weight, 1-10000; 100 = an equal share (default 100)
///   CHILD_CGROUP              auto, required or off: each child in a cgroup of its own, v2 where delegated, else v1
///                             memory,pids,freezer,cpu; auto falls back to resource limits, said in the log (default auto)
///   CHILD_FILE_SIZE_LIMIT     a child's RLIMIT_FSIZE, e.g. 1G (default unlimited)
///   CHILD_OPEN_FILES          a child's RLIMIT_NOFILE (default inherited)
///   CHILD_NICE                added to a child's nice value, 0-19 (default 0)
///   CHILD_SPARES              children kept started ahead of their attempts (in the idle scheduling
///                             class until taken), each serving one attempt;
///                             0 starts a child per attempt when it comes (default 1)
///   ATTEMPT_TIMEOUT_MULTIPLIER, ATTEMPT_TIMEOUT_MIN, ATTEMPT_TIMEOUT_MAX
///                             timeout = multiplier x hoster's estimate, within min..max (10, 60s, 2h)
///   CANCEL_GRACE              SIGTERM-to-SIGKILL grace for a child (default 5s)
///   SHUTDOWN_GRACE            once a drain began, how long accepted attempts may run before they are cancelled (default 30s)
///   TERMINATION_CHECK_URL     polled for a termination notice (a spot instance's metadata URL): 200 begins a drain
///   TERMINATION_CHECK_INTERVAL  how often it is polled (default 5s)
///   ATTEMPT_RETENTION_AGE, ATTEMPT_RETENTION_BYTES
///                             kept attempt directories are removed past this age or total size (168h, 10G)
///   OUTPUT_SPACE_MARGIN       refuse a job unless its output filesystem keeps this much free (default 1G)
///   WEB_DOMAIN                the web view sets document.domain to it, for pages embedded in a portal
///   ETCD_URL                  etcd endpoints, host:port or http(s)://host:port, ','-separated (default: no etcd);
///                             registers ETCD_ROOT/workers/<addr> and puts ETCD_ROOT/dcompact-res/<attempt> = done
///   ETCD_ROOT                 key prefix in etcd (default /dcompact)
///   ETCD_USERNAME, ETCD_PASSWORD  etcd credentials (never logged)
///   ETCD_CA, ETCD_CERT, ETCD_KEY  PEM files for TLS to etcd: CA, client certificate and key
///   ETCD_LOAD_BALANCER        round_robin or pick_first over several endpoints (default round_robin)
///   ETCD_LEASE_TTL            registration lease; a dead worker vanishes after it (default 10s)
///   ETCD_DONE_TTL             lifetime of a dcompact-res key (default 60s)
///   ZIP_SERVER_OPTIONS        with MULTI_PROCESS the worker starts a zipserver that compresses the children's
///                             output blocks; this tunes it (listening_ports=127.0.0.1:0:num_threads=2:...;
///                             see `zipserver --help`); `on`: the defaults, HTTP on a free port; `off` or
///                             unset: none
///   ZIP_SERVER_SOCKET         with MULTI_PROCESS: Unix socket of a zipserver already running (none is started)
///   RUST_LOG                  log filter, e.g. info or farm::worker=debug (default info)
///   LOG_FORMAT                text or json (JSON lines); same as --log-json (default text)
///
/// Drain (leave etcd, answer new jobs 503 "stopping", finish the accepted
/// attempts within SHUTDOWN_GRACE, wait until their results are collected
/// or RESULT_RETENTION passed, exit): POST /drain (with the token),
/// SIGUSR1, SIGTERM or SIGINT, or a termination notice. A second SIGTERM or
/// SIGINT cancels what still runs and exits.
///
/// Logs go to stderr. Every event of an attempt carries the attempt's name
/// (span "attempt", field attempt=<instance>/<start_time>/<db>/job-.../att-..).
///
/// Web: /stat and /list (HTML; ?html=0 for JSON) list running and recent
/// attempts with kill buttons and links to /attempts/<name>/LOG, LOG.child,
/// summary.html. With WORKER_AUTH_TOKEN set, type the token into the page or
/// open it as /list#token=<token>. /metrics serves Prometheus text format.
// The comment above is the `--help` text (clap, verbatim), not HTML:
// `<root>`, `<token>` are placeholders for people. (`expect` does not fit:
// only rustdoc checks this lint, so rustc would call it unfulfilled.)
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Parser)]
#[command(name = "dcompact-worker", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on; overrides LISTEN_ADDR.
    #[arg(long)]
    listen: Option<String>,
    /// TOML configuration file (keys: listen_addr, worker_db_root, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text (LOG_FORMAT=json does the same).
    #[arg(long)]
    log_json: bool,
    /// Internal: run the attempt in this directory as a MULTI_PROCESS child.
    #[arg(long, hide = true, value_name = "ATTEMPT_DIR")]
    child: Option<PathBuf>,
    /// Internal: a MULTI_PROCESS child started ahead, waiting on standard
    /// input for its attempt directory.
    #[arg(long, hide = true)]
    child_spare: bool,
    /// Internal: load these plugins and print their classes as JSON.
    #[arg(long, hide = true, num_args = 1.., value_name = "PLUGIN")]
    describe_plugins: Option<Vec<PathBuf>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.child {
        std::process::exit(farm::worker::child::entry::run(dir));
    }
    if args.child_spare {
        std::process::exit(farm::worker::child::entry::run_spare());
    }
    if let Some(paths) = &args.describe_plugins {
        std::process::exit(farm::worker::plugin_catalog::describe_main(paths));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("") | Ok("text") => args.log_json,
        Ok("json") => true,
        Ok(other) => anyhow::bail!("LOG_FORMAT={other:?}: expected text or json"),
    };
    if json {
        logs.json().init();
    } else {
        logs.init();
    }

    if !farm::worker::large_buffers::return_large_buffers() {
        tracing::warn!("the allocator refused a fixed mmap threshold: freed request buffers may stay in the worker's memory");
    }
    let mut config =
        WorkerConfig::load(args.config.as_deref()).context("invalid worker configuration")?;
    if let Some(listen) = &args.listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("--listen {listen:?}: expected ip:port"))?;
    }

    if config.multi_process {
        // Descendants of an attempt that escape its process group with
        // setsid come back to the worker, which ends them with the attempt.
        nix::sys::prctl::set_child_subreaper(true).context("failed to become a child subreaper")?;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let served = runtime.block_on(async move {
        let listener = farm::worker::listener::accept::bind(config.listen)
            .with_context(|| format!("failed to listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on {addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tracing::info!(%addr, root = %config.worker_db_root.display(), parallel = config.max_parallel_compactions, "worker started");
        let drain = Drain::new();
        let signals = tokio::spawn(drain_on_signals(drain.clone()));
        server::run(config, listener, drain).await?;
        signals.abort();
        tracing::info!("worker stopped");
        Ok(())
    });
    // Every attempt has ended. What may still hold a blocking thread is an
    // admission stuck on storage that does not answer: exit without it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    served
}

/// SIGUSR1 and the first SIGTERM or SIGINT begin a drain; a second SIGTERM
/// or SIGINT stops now.
async fn drain_on_signals(drain: Arc<Drain>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("failed to install signal handlers; drain the worker with POST /drain");
        return;
    };
    let mut stops = 0u32;
    loop {
        let name = tokio::select! {
            _ = usr1.recv() => {
                drain.begin(DrainCause::Signal("SIGUSR1"));
                continue;
            }
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        stops += 1;
        if stops == 1 {
            drain.begin(DrainCause::Signal(name));
        } else {
            drain.stop_now(DrainCause::Signal(name));
        }
    }
}
