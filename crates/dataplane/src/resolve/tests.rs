use super::*;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn family_order_table() {
    let a1 = sock("10.0.0.1:80");
    let a2 = sock("10.0.0.2:80");
    let b1 = sock("[2001:db8::1]:80");
    let b2 = sock("[2001:db8::2]:80");
    let cases: [(Vec<SocketAddr>, bool, Vec<SocketAddr>); 5] = [
        (vec![b1, a1, b2, a2], false, vec![a1, a2, b1, b2]),
        (vec![b1, a1, b2, a2], true, vec![b1, b2, a1, a2]),
        (vec![a2, a1], true, vec![a2, a1]),
        (vec![b2, b1], false, vec![b2, b1]),
        (vec![], true, vec![]),
    ];
    for (input, prefer_ipv6, want) in cases {
        assert_eq!(
            family_order(input.clone(), prefer_ipv6),
            want,
            "{input:?} v6={prefer_ipv6}"
        );
    }
}

#[test]
fn without_lookup_table() {
    let loopback = Some(vec![
        IpAddr::from(Ipv4Addr::LOCALHOST),
        IpAddr::from(Ipv6Addr::LOCALHOST),
    ]);
    let cases = [
        ("127.0.0.1", Some(vec![IpAddr::from([127, 0, 0, 1])])),
        ("::1", Some(vec![IpAddr::from(Ipv6Addr::LOCALHOST)])),
        ("localhost", loopback.clone()),
        ("LocalHost", loopback.clone()),
        ("localhost.", loopback.clone()),
        ("api.localhost", loopback.clone()),
        ("notlocalhost", None),
        ("localhost.example.com", None),
        ("example.com", None),
    ];
    for (host, want) in cases {
        assert_eq!(without_lookup(host), want, "{host}");
    }
}

/// A lookup that answers from a script, counts its calls and, when gated,
/// waits for a permit before answering.
#[derive(Default)]
struct Script {
    calls: AtomicUsize,
    answers: Mutex<VecDeque<Result<Answer, String>>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

struct Shared(Arc<Script>);

impl Lookup for Shared {
    fn lookup(&self, _host: String) -> LookupFuture {
        let script = self.0.clone();
        Box::pin(async move {
            script.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &script.gate {
                let _permit = gate.acquire().await.expect("gate open");
            }
            script
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Err("script ran out".into()))
        })
    }
}

fn answer(ips: &[&str], ttl_secs: u64) -> Result<Answer, String> {
    Ok(Answer {
        addrs: ips.iter().map(|s| s.parse().unwrap()).collect(),
        ttl: Duration::from_secs(ttl_secs),
    })
}

thread_local! {
    /// How far the test clock has moved; each test runs on its own thread.
    static ELAPSED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

fn test_clock() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now) + ELAPSED.with(Cell::get)
}

fn advance(d: Duration) {
    ELAPSED.with(|e| e.set(e.get() + d));
}

fn scripted(answers: Vec<Result<Answer, String>>) -> (Resolver, Arc<Script>) {
    let script = Arc::new(Script {
        answers: Mutex::new(answers.into()),
        ..Script::default()
    });
    (
        Resolver::new(Box::new(Shared(script.clone())), test_clock),
        script,
    )
}

#[tokio::test]
async fn literals_and_localhost_skip_the_lookup() {
    let (r, script) = scripted(vec![]);
    assert_eq!(
        r.resolve("127.0.0.1", 7, false).await.unwrap(),
        vec![sock("127.0.0.1:7")]
    );
    assert_eq!(
        r.resolve("::1", 7, false).await.unwrap(),
        vec![sock("[::1]:7")]
    );
    assert_eq!(
        r.resolve("localhost", 7, false).await.unwrap(),
        vec![sock("127.0.0.1:7"), sock("[::1]:7")]
    );
    assert_eq!(
        r.resolve("localhost", 7, true).await.unwrap(),
        vec![sock("[::1]:7"), sock("127.0.0.1:7")]
    );
    assert_eq!(script.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn localhost_resolves_through_the_engine_resolver() {
    let r = Resolver::default();
    let addrs = r.resolve("localhost", 9, false).await.unwrap();
    assert_eq!(addrs, vec![sock("127.0.0.1:9"), sock("[::1]:9")]);
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl_in_family_order() {
    let (r, script) = scripted(vec![
        answer(&["2001:db8::1", "10.0.0.1", "10.0.0.2"], 60),
        answer(&["10.0.0.9"], 60),
    ]);
    let v4_first = r.resolve("svc.test", 443, false).await.unwrap();
    assert_eq!(
        v4_first,
        vec![
            sock("10.0.0.1:443"),
            sock("10.0.0.2:443"),
            sock("[2001:db8::1]:443")
        ]
    );
    let v6_first = r.resolve("svc.test", 80, true).await.unwrap();
    assert_eq!(v6_first[0], sock("[2001:db8::1]:80"));
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        1,
        "second ask was cached"
    );
    advance(Duration::from_secs(61));
    let renewed = r.resolve("svc.test", 80, false).await.unwrap();
    assert_eq!(renewed, vec![sock("10.0.0.9:80")]);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn failed_lookup_serves_the_expired_answer_for_30s() {
    let (r, script) = scripted(vec![
        answer(&["10.0.0.1"], 10),
        Err("SERVFAIL".into()),
        Err("SERVFAIL".into()),
        Ok(Answer {
            addrs: vec![],
            ttl: Duration::from_secs(10),
        }),
    ]);
    r.resolve("svc.test", 1, false).await.unwrap();
    advance(Duration::from_secs(11));
    assert_eq!(
        r.resolve("svc.test", 1, false).await.unwrap(),
        vec![sock("10.0.0.1:1")],
        "stale while the lookup fails"
    );
    advance(Duration::from_secs(30));
    assert_eq!(
        r.resolve("svc.test", 1, false).await,
        Err(ResolveError::Lookup {
            host: "svc.test".into(),
            reason: "SERVFAIL".into()
        }),
        "grace is over 40 s after the answer, 30 s after it expired"
    );
    assert_eq!(
        r.resolve("svc.test", 1, false).await,
        Err(ResolveError::NoAddresses {
            host: "svc.test".into()
        })
    );
    assert_eq!(script.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_share_one_query() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let script = Arc::new(Script {
        answers: Mutex::new(vec![answer(&["10.0.0.7"], 60)].into()),
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let r = Resolver::new(Box::new(Shared(script.clone())), Instant::now);
    let askers: Vec<_> = (0..20)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move { r.resolve("one.test", 5, false).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while r.state().in_flight.is_empty() {
        assert!(Instant::now() < deadline, "no lookup started");
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    for asker in askers {
        assert_eq!(asker.await.unwrap().unwrap(), vec![sock("10.0.0.7:5")]);
    }
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
    assert!(r.state().in_flight.is_empty());
}

#[tokio::test]
async fn a_cancelled_first_asker_hands_the_lookup_over() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let script = Arc::new(Script {
        answers: Mutex::new(vec![answer(&["10.0.0.1"], 60), answer(&["10.0.0.2"], 60)].into()),
        gate: Some(gate.clone()),
        ..Script::default()
    });
    let r = Resolver::new(Box::new(Shared(script.clone())), Instant::now);
    let first = tokio::spawn({
        let r = r.clone();
        async move { r.resolve("x.test", 1, false).await }
    });
    while script.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    gate.add_permits(100);
    let addrs = r.resolve("x.test", 1, false).await.unwrap();
    assert_eq!(addrs.len(), 1);
}
