//! Loopback UDP load for `bench/udp.sh`: an echo backend, a single-flow
//! rate test and a many-flows test. Every mode is bounded in time.
//!
//! ```text
//! udp_bench echo <secs>                          echo on 127.0.0.1:0 for <secs>; prints the port
//! udp_bench rate <addr> <secs> [window] [size]   one source, <window> datagrams in flight
//! udp_bench flows <addr> <count> [secs]          <count> sources, each answered once
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: udp_bench echo <secs> | rate <addr> <secs> [window] [size] | flows <addr> <count> [secs]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["echo", secs] => parse(secs).and_then(|s| echo(Duration::from_secs(s))),
        ["rate", addr, secs, rest @ ..] => (|| {
            let window = rest.first().map_or(Ok(32), |w| parse(w))?;
            let size = rest.get(1).map_or(Ok(64), |s| parse(s))?;
            rate(
                addr_of(addr)?,
                Duration::from_secs(parse(secs)?),
                window,
                size,
            )
        })(),
        ["flows", addr, count, rest @ ..] => (|| {
            let secs = rest.first().map_or(Ok(30), |s| parse(s))?;
            flows(addr_of(addr)?, parse(count)?, Duration::from_secs(secs))
        })(),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a number\n{USAGE}"))
}

fn addr_of(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s:?}: {e}"))
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// Echoes datagrams until `limit` passes, so a forgotten backend ends.
fn echo(limit: Duration) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    // Room for a whole burst, so the backend is never what drops it.
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(4 << 20)
        .map_err(io)?;
    println!("{}", socket.local_addr().map_err(io)?.port());
    std::io::stdout().flush().map_err(io)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    while start.elapsed() < limit {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    }
    Ok(())
}

/// Datagrams per second answered for one source keeping `window`
/// datagrams of `size` bytes in flight; lost ones are replaced after a
/// 50 ms silence.
fn rate(to: SocketAddr, secs: Duration, window: usize, size: usize) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    socket.connect(to).map_err(io)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(io)?;
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; 65536];
    let refill = |n: usize| -> Result<(), String> {
        for _ in 0..n {
            socket.send(&payload).map_err(io)?;
        }
        Ok(())
    };
    // Warm up: the first datagram opens the flow.
    refill(1)?;
    let _ = socket.recv(&mut buf);
    refill(window)?;
    let (start, mut answered, mut refills) = (Instant::now(), 0u64, 0u64);
    while start.elapsed() < secs {
        match socket.recv(&mut buf) {
            Ok(_) => {
                answered += 1;
                refill(1)?;
            }
            Err(_) => {
                refills += 1;
                refill(window)?;
            }
        }
    }
    let per_sec = answered as f64 / start.elapsed().as_secs_f64();
    println!(
        "{per_sec:.0} datagrams/s answered ({answered} in {secs:?}, {refills} window refills)"
    );
    Ok(())
}

/// Opens `count` sources and waits until each got one answer, sending
/// again to the silent ones; fails after `limit`.
fn flows(to: SocketAddr, count: usize, limit: Duration) -> Result<(), String> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.connect(to)?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect::<Result<_, std::io::Error>>()
        .map_err(io)?;
    let start = Instant::now();
    let mut waiting: HashSet<usize> = (0..count).collect();
    let mut buf = [0u8; 64];
    let mut rounds = 0;
    while !waiting.is_empty() {
        rounds += 1;
        if start.elapsed() > limit {
            return Err(format!(
                "{} of {count} sources unanswered after {limit:?}",
                waiting.len()
            ));
        }
        for &i in &waiting {
            let _ = sockets[i].send(b"flow");
        }
        let round = Instant::now();
        while !waiting.is_empty() && round.elapsed() < Duration::from_millis(500) {
            waiting.retain(|&i| sockets[i].recv(&mut buf).is_err());
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    println!(
        "{count} flows answered in {:?} ({rounds} send round(s))",
        start.elapsed()
    );
    Ok(())
}
