//! One simulated edge: the real client's control protocol (pinned TLS from
//! an address of its own, the `Session` stream, hello, an outcome for every
//! rule, a stats report every interval, full-jitter backoff) without a data
//! plane, so every rule it is given activates at once.

use portunus_client::backoff::Backoff;
use portunus_client::pin::CertPin;
use portunus_client::reconcile::{Outcome, RuleOutcome};
use portunus_client::{tls, wire};
use portunus_dataplane::RuleStats;
use portunus_domain::endpoint::Endpoint;
use portunus_proto::pb::{self, control_client::ControlClient, server_message::Kind};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::AsciiMetadataValue;
use tonic::Request;

/// What every edge of the fleet shares.
pub struct Fleet {
    pub endpoint: Endpoint,
    pub pin: CertPin,
    pub stats_interval: Duration,
    pub backoff: Backoff,
    /// The zero of every timestamp in [`Progress`].
    pub epoch: Instant,
    /// Whether every rule moves traffic between two reports; without it
    /// the reports repeat the same counters, as an idle fleet's do.
    pub traffic: AtomicBool,
}

impl Fleet {
    pub fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// One edge's credential and the loopback address it dials from.
pub struct Identity {
    pub name: String,
    pub token: String,
    pub source: IpAddr,
}

/// What the orchestrator reads about one edge while it runs.
#[derive(Default)]
pub struct Progress {
    /// When (ms after the epoch) the edge last answered a full rule set of
    /// a session; 0 before the first.
    pub reconciled_at: AtomicU64,
    /// Rules held after that full set.
    pub rules: AtomicU32,
    /// Sessions that reached a welcome.
    pub sessions: AtomicU32,
    /// Dial or stream attempts that failed before a welcome.
    pub failed_attempts: AtomicU32,
}

/// The sending half's buffer; a session sends at most one outcome per rule
/// of a full set before it reads again.
const OUTBOUND: usize = 256;

/// Redeems `code` from `source`; the client's name and bearer token.
pub async fn redeem(
    endpoint: &Endpoint,
    pin: CertPin,
    code: &str,
    source: IpAddr,
) -> anyhow::Result<(String, String)> {
    let channel = tls::channel_from(endpoint, pin, Some(source)).await?;
    let response = ControlClient::new(channel)
        .redeem(pb::RedeemRequest {
            code: code.to_string(),
            client_version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .await?
        .into_inner();
    Ok((response.client_name, response.token))
}

/// Holds the edge's control stream until the task is aborted.
pub async fn run(fleet: Arc<Fleet>, id: Identity, progress: Arc<Progress>) {
    let mut authorization: AsciiMetadataValue = format!("Bearer {}", id.token)
        .parse()
        .expect("tokens are ASCII");
    authorization.set_sensitive(true);
    let mut stamp = wire::ReportStamp::new_run();
    let mut rng = StdRng::from_os_rng();
    let mut attempt = 0u32;
    let mut counters: BTreeMap<String, RuleStats> = BTreeMap::new();
    loop {
        let welcomed = session(
            &fleet,
            &id,
            &authorization,
            &mut stamp,
            &mut counters,
            &progress,
        )
        .await;
        if welcomed {
            attempt = 0;
        } else {
            progress.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        let delay = fleet.backoff.delay(attempt, &mut rng);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

/// One session; whether it got as far as a welcome.
async fn session(
    fleet: &Fleet,
    id: &Identity,
    authorization: &AsciiMetadataValue,
    stamp: &mut wire::ReportStamp,
    counters: &mut BTreeMap<String, RuleStats>,
    progress: &Progress,
) -> bool {
    let Ok(channel) = tls::channel_from(&fleet.endpoint, fleet.pin, Some(id.source)).await else {
        return false;
    };
    let (tx, rx) = mpsc::channel(OUTBOUND);
    let _ = tx
        .send(wire::hello(env!("CARGO_PKG_VERSION"), &id.name))
        .await;
    let mut request = Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    let Ok(response) = ControlClient::new(channel).session(request).await else {
        return false;
    };
    let mut inbound = response.into_inner();
    let mut welcomed = false;
    let period = fleet.stats_interval;
    let mut tick = interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(m)) => {
                    for reply in answer(m, counters, &mut welcomed, fleet, progress) {
                        let _ = tx.send(reply).await;
                    }
                }
                Ok(None) | Err(_) => return welcomed,
            },
            _ = tick.tick() => {
                let moving = fleet.traffic.load(Ordering::Relaxed);
                let rules = counters.iter_mut().map(|(id, s)| {
                    if moving {
                        s.bytes_in += 4_096;
                        s.bytes_out += 16_384;
                        s.connections_total += 1;
                    }
                    (id.clone(), 1, s.clone())
                }).collect();
                let _ = tx.send(wire::stats_report(stamp.next_report(), rules)).await;
            }
        }
    }
}

/// The messages an edge sends back for one server message.
fn answer(
    message: pb::ServerMessage,
    counters: &mut BTreeMap<String, RuleStats>,
    welcomed: &mut bool,
    fleet: &Fleet,
    progress: &Progress,
) -> Vec<pb::ClientMessage> {
    let outcome = |rule_id: String, outcome| wire::outcome(RuleOutcome { rule_id, outcome });
    match message.kind {
        Some(Kind::Welcome(_)) => {
            *welcomed = true;
            progress.sessions.fetch_add(1, Ordering::Relaxed);
            vec![]
        }
        Some(Kind::RuleSet(set)) => {
            let wanted: BTreeMap<String, RuleStats> = set
                .rules
                .iter()
                .map(|r| {
                    let kept = counters.remove(&r.rule_id).unwrap_or_default();
                    (r.rule_id.clone(), kept)
                })
                .collect();
            *counters = wanted;
            progress
                .rules
                .store(counters.len() as u32, Ordering::Relaxed);
            progress
                .reconciled_at
                .store(fleet.millis(), Ordering::Relaxed);
            counters
                .keys()
                .map(|id| outcome(id.clone(), Outcome::Activated))
                .collect()
        }
        Some(Kind::Push(rule)) => {
            counters.entry(rule.rule_id.clone()).or_default();
            vec![outcome(rule.rule_id, Outcome::Activated)]
        }
        Some(Kind::Remove(remove)) => {
            counters.remove(&remove.rule_id);
            vec![outcome(remove.rule_id, Outcome::Removed)]
        }
        _ => vec![],
    }
}
