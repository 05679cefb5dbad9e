//! `zipserver`: compresses RocksDB output blocks for the compaction children
//! of one worker host, with one set of compression threads and one memory
//! budget.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use zipserver::options::ZipServerOptions;
use zipserver::server::http::{self, HttpState};
use zipserver::server::service::{Service, Shape};
use zipserver::server::stats::ZipStats;
use zipserver::server::{ring_threads, socket};

/// Compresses RocksDB output blocks for every compaction child of a worker
/// host, so N children share `num_threads` cores and one memory budget.
///
/// Options come from ZIP_SERVER_OPTIONS, civetweb style:
///   listening_ports=8090:num_threads=32:unix_socket=/run/zip.sock:memory_budget=256M
///
///   listening_ports  HTTP /stat and /metrics: port or ip:port (default 127.0.0.1:8090; 0 = any)
///   num_threads      compression threads (default: number of CPUs)
///   unix_socket      where children connect (default /tmp/zipserver.sock)
///   memory_budget    bytes of blocks worked on at once; more wait (default 256M)
///   server_spin      how long an idle compression thread polls before it sleeps (default 50us)
///   pin_threads      pin each compression thread to a CPU, children use the one on theirs (default true)
///   client_timeout, blocks_in_flight, client_spin, transport
///                    read by workers for their children (see zipserver/README.md)
///
/// The first line on stdout is "listening on <ip:port>".
#[derive(Debug, Parser)]
#[command(name = "zipserver", version, verbatim_doc_comment)]
struct Args {}

fn main() -> anyhow::Result<()> {
    Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let text = std::env::var("ZIP_SERVER_OPTIONS").unwrap_or_default();
    let opts = ZipServerOptions::parse(&text).context("invalid ZIP_SERVER_OPTIONS")?;
    let socket_path = opts
        .unix_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/zipserver.sock"));

    let registry = prometheus::Registry::new();
    let stats = Arc::new(ZipStats::new(&registry).context("failed to register metrics")?);
    let shape = Shape {
        num_threads: opts.num_threads,
        memory_budget: opts.memory_budget,
        server_spin: opts.server_spin,
        pin_threads: opts.pin_threads,
    };
    let service = Service::new(shape, stats).context("failed to make the control page")?;
    let listener = socket::bind(&socket_path)
        .with_context(|| format!("failed to listen on {}", socket_path.display()))?;
    let compressing =
        ring_threads::start(&service).context("failed to start compression threads")?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept = std::thread::Builder::new()
        .name("zip-accept".into())
        .spawn({
            let (service, stop) = (service.clone(), stop.clone());
            move || socket::serve(listener, service, stop)
        })?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let state = Arc::new(HttpState {
        service: service.clone(),
        registry,
        unix_socket: socket_path.display().to_string(),
    });
    runtime.block_on(async {
        let tcp = tokio::net::TcpListener::bind(opts.listening_ports)
            .await
            .with_context(|| format!("failed to listen on {}", opts.listening_ports))?;
        let addr = tcp.local_addr()?;
        println!("listening on {addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tracing::info!(%addr, socket = %socket_path.display(), threads = opts.num_threads, "zipserver started");
        axum::serve(tcp, http::router(state))
            .with_graceful_shutdown(stop_signal())
            .await?;
        anyhow::Ok(())
    })?;
    stop.store(true, Ordering::Release);
    service.stop();
    match accept.join() {
        Ok(r) => r.context("accepting on the unix socket failed")?,
        Err(_) => anyhow::bail!("the accept thread panicked"),
    }
    for t in compressing {
        if t.join().is_err() {
            anyhow::bail!("a compression thread panicked");
        }
    }
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("zipserver stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("failed to install signal handlers; stop the zipserver with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
