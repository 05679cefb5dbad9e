//! The cost of the transport alone, without RocksDB: `clients` clients
//! (each its own ring or socket pool) with `threads` threads each compress
//! `blocks` blocks in a loop through a `zipserver` process, then the same
//! blocks are compressed in this process. Prints CPU per block of this
//! process and of the zipserver.
//!
//! cargo run --example transport_bench -- <zipserver binary> [ring|socket] [clients] [threads] [blocks] [block bytes] [num_threads]
//!
//! Environment: `WORK_US` (CPU each thread spends between two blocks, as a
//! compaction does), `SERVER_SPIN` (`server_spin`), `CLIENT_SPIN_US`.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zipserver::client::{ClientConfig, ZipClient};
use zipserver::codec::{BlockTransport, BuiltinCompressor, ZipParams};
use zipserver::options::Transport;

fn cpu_self() -> f64 {
    // SAFETY: getrusage into a zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn cpu_of(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &text[text.rfind(')').map_or(0, |i| i + 2)..];
    // Fields after the command name, by position: utime and stime are the
    // 12th and 13th (the state, a letter, is the first).
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / hz
}

fn block(seed: u64, len: usize) -> Vec<u8> {
    let words = ["compaction ", "farm ", "zipserver ", "ring ", "block "];
    let mut x = seed | 1;
    let mut b = Vec::with_capacity(len + 16);
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(2) {
            b.extend_from_slice(&x.to_le_bytes());
        } else {
            b.extend_from_slice(words[(x % 5) as usize].as_bytes());
        }
    }
    b.truncate(len);
    b
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bin = &a[1];
    let transport = if a.get(2).map(String::as_str) == Some("socket") {
        Transport::Socket
    } else {
        Transport::Ring
    };
    let arg = |i: usize, d: usize| a.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (clients, threads, blocks, len, num_threads) =
        (arg(3, 4), arg(4, 4), arg(5, 20000), arg(6, 4096), arg(7, 2));
    let dir = std::env::temp_dir().join(format!("transport-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let socket = dir.join("z.sock");
    let spin = std::env::var("SERVER_SPIN").unwrap_or_else(|_| "50us".into());
    let mut server = std::process::Command::new(bin)
        .env("ZIP_SERVER_OPTIONS", format!("listening_ports=127.0.0.1:0:num_threads={num_threads}:server_spin={spin}:unix_socket={}", socket.display()))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the zipserver binary starts");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the zipserver prints its address");
    let params = ZipParams {
        kind: 1,
        level: 32767,
        window_bits: -14,
        max_compressed_bytes_per_kb: 896,
        ..ZipParams::default()
    };
    let inputs: Arc<Vec<Vec<u8>>> = Arc::new((0..64).map(|i| block(i + 1, len)).collect());
    let work = Duration::from_micros(
        std::env::var("WORK_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let client_spin: u64 = std::env::var("CLIENT_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let zs = (0..clients)
        .map(|c| {
            Arc::new(ZipClient::new(ClientConfig {
                socket: socket.clone(),
                client: format!("c{c}"),
                timeout_ms: 5000,
                blocks_in_flight: threads as u32,
                transport,
                spin_us: client_spin,
            }))
        })
        .collect::<Vec<_>>();
    let run = |remote: bool| {
        let (c0, s0, t0) = (cpu_self(), cpu_of(server.id()), Instant::now());
        let hs: Vec<_> = (0..clients * threads)
            .map(|t| {
                let z = zs[t % clients].clone();
                let inputs = inputs.clone();
                std::thread::spawn(move || {
                    let mut local = BuiltinCompressor::new(&params)
                        .expect("a compressor")
                        .expect("a compressor for the parameters");
                    let mut out = vec![0u8; len];
                    for i in 0..blocks / (clients * threads) {
                        let input = &inputs[(t + i) % inputs.len()];
                        let cap = input.len() * 7 / 8;
                        let spin_until = Instant::now() + work;
                        while Instant::now() < spin_until {
                            std::hint::spin_loop();
                        }
                        if remote {
                            z.compress(&params, input, &mut out[..cap]).expect("remote");
                        } else {
                            local
                                .compress(input, &mut out[..cap])
                                .expect("in-process compression");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("a bench thread");
        }
        let (c, s, w) = (cpu_self() - c0, cpu_of(server.id()) - s0, t0.elapsed());
        println!("{:<7} {blocks} blocks of {len} B: wall {:.3} s, client cpu {:.2} us/block, zipserver cpu {:.2} us/block, total {:.2} us/block",
            if remote { format!("{transport:?}") } else { "local".into() }, w.as_secs_f64(),
            c / blocks as f64 * 1e6, s / blocks as f64 * 1e6, (c + s) / blocks as f64 * 1e6);
    };
    run(false);
    run(true);
    run(false);
    run(true);
    let c = zs[0].counts();
    println!("client 0: {c:?}");
    let _ = server.kill();
    let _ = server.wait();
    std::thread::sleep(Duration::from_millis(10));
    std::fs::remove_dir_all(&dir).ok();
}
