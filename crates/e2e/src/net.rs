//! Loopback peers for tests: TCP and UDP echo backends and a hashing
//! transfer.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

/// A TCP echo server on 127.0.0.1:0, one thread per connection. It echoes
/// until EOF, then closes its write side (half-close aware).
pub fn echo_server() -> SocketAddr {
    echo_server_on("127.0.0.1:0")
}

/// `echo_server` on another loopback address, e.g. `[::1]:0`.
pub fn echo_server_on(bind: &str) -> SocketAddr {
    let l = TcpListener::bind(bind).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { break };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// `127.0.0.1:<port>`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port that was free a moment ago (bind 0, read, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback TCP port below the kernel's ephemeral range, for
/// listeners that a restarted process must bind again. Ports handed out by
/// `bind(0)` and by outgoing connections all come from the ephemeral range,
/// so another test cannot take this one while its server restarts.
pub fn pinnable_port() -> u16 {
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low < LOWEST + 1_000 {
        return free_port();
    }
    let span = ephemeral_low - LOWEST;
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    };
    for i in 0..span {
        let port = (LOWEST + (seed as u32).wrapping_add(i) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    free_port()
}

/// `n` listeners on consecutive ports of `ip`.
pub fn consecutive(ip: &str, n: u16) -> Vec<TcpListener> {
    for _ in 0..200 {
        let first = TcpListener::bind((ip, 0)).unwrap();
        let start = first.local_addr().unwrap().port();
        if start.checked_add(n - 1).is_none() {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n).map(|i| TcpListener::bind((ip, start + i))).collect();
        if let Ok(rest) = rest {
            return std::iter::once(first).chain(rest).collect();
        }
    }
    panic!("no {n} consecutive free ports");
}

/// Deterministic pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Sends `data` through `addr` to an echo backend, half-closes, and returns
/// the SHA-256 of everything echoed back.
pub fn echo_roundtrip(addr: SocketAddr, data: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = s.try_clone()?;
    let data = data.to_vec();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(&data)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    sender.join().expect("sender thread")?;
    Ok(hex::encode(hasher.finalize()))
}

/// True when a short message goes through `addr` and comes back.
pub fn echo_ok(addr: SocketAddr) -> bool {
    let msg = b"ping portunus";
    echo_roundtrip(addr, msg)
        .map(|h| h == sha256(msg))
        .unwrap_or(false)
}

/// A UDP echo server on 127.0.0.1:0: one thread answers every datagram to
/// its sender.
pub fn udp_echo_server() -> SocketAddr {
    udp_echo_on(UdpSocket::bind("127.0.0.1:0").unwrap(), b"")
}

/// Echoes every datagram that reaches `socket` back to its sender,
/// prefixed with `tag`, from a thread of its own.
pub fn udp_echo_on(socket: UdpSocket, tag: &'static [u8]) -> SocketAddr {
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let reply = [tag, &buf[..n]].concat();
            let _ = socket.send_to(&reply, from);
        }
    });
    addr
}

/// Sends `msg` to `to` and returns the first datagram back, sending again
/// every 500 ms in case one was lost; `None` after `timeout`.
pub fn udp_ask(
    socket: &UdpSocket,
    to: SocketAddr,
    msg: &[u8],
    timeout: Duration,
) -> Option<Vec<u8>> {
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 65536];
    while start.elapsed() < timeout {
        socket.send_to(msg, to).ok()?;
        let wait = Duration::from_millis(500).min(timeout.saturating_sub(start.elapsed()));
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}
