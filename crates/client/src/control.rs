//! The control loop: dial the server, hold the `Session` stream, apply what
//! it says through the reconciler, report outcomes and stats, and reconnect
//! with backoff when the stream is lost.
//!
//! **Invariant:** nothing here stops a rule because the control plane is
//! unreachable. Only a server message (a full set, a push or a remove)
//! changes what runs.

use crate::backoff::Backoff;
use crate::bundle::Token;
use crate::pin::CertPin;
use crate::reconcile::{Desired, Reconciler};
use crate::{tls, wire};
use portunus_dataplane::EngineConfig;
use portunus_domain::endpoint::Endpoint;
use portunus_proto::pb::server_message::Kind;
use portunus_proto::pb::{self, control_client::ControlClient};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Code, Request, Status};

/// Outcomes of a large full set are queued here while the stream drains.
const OUTBOUND_BUFFER: usize = 256;

pub struct ControlConfig {
    pub endpoint: Endpoint,
    pub pin: CertPin,
    pub client_id: String,
    pub client_version: String,
    pub hostname: String,
    pub backoff: Backoff,
    pub stats_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("the bundle token contains characters that cannot travel in a gRPC header")]
pub struct TokenNotAscii;

pub struct Control {
    cfg: ControlConfig,
    /// `Bearer <token>`, flagged sensitive so that no debug output shows it.
    authorization: AsciiMetadataValue,
    /// Stamps this process's stats reports across reconnections.
    stamp: wire::ReportStamp,
}

/// Why a session ended; each is logged differently.
#[derive(Debug)]
enum SessionEnd {
    DialFailed(tonic::transport::Error),
    Refused(Status),
    Lost(Status),
    ClosedByServer,
}

impl Control {
    pub fn new(cfg: ControlConfig, token: &Token) -> Result<Control, TokenNotAscii> {
        let mut authorization: AsciiMetadataValue = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| TokenNotAscii)?;
        authorization.set_sensitive(true);
        Ok(Control {
            cfg,
            authorization,
            stamp: wire::ReportStamp::new_run(),
        })
    }

    /// Runs until the future is dropped, which is how shutdown stops it.
    pub async fn run(&mut self, rec: &mut Reconciler) -> Infallible {
        let mut rng = StdRng::from_os_rng();
        let mut attempt: u32 = 0;
        loop {
            let mut welcomed = false;
            let end = self.session(rec, &mut welcomed).await;
            self.log_end(&end, rec);
            // A stream that got as far as a welcome was a healthy
            // connection; its loss starts the backoff from the bottom.
            if welcomed {
                attempt = 0;
            }
            let delay = self.cfg.backoff.delay(attempt, &mut rng);
            attempt = attempt.saturating_add(1);
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                attempt,
                "reconnecting to the control plane"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn session(&mut self, rec: &mut Reconciler, welcomed: &mut bool) -> SessionEnd {
        let channel = match tls::channel(&self.cfg.endpoint, self.cfg.pin).await {
            Ok(channel) => channel,
            Err(e) => return SessionEnd::DialFailed(e),
        };
        let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
        // The receiver is alive, so this send cannot fail.
        let _ = tx
            .send(wire::hello(&self.cfg.client_version, &self.cfg.hostname))
            .await;
        let mut request = Request::new(ReceiverStream::new(rx));
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        let mut inbound = match ControlClient::new(channel).session(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return SessionEnd::Refused(status),
        };
        tracing::info!(server = %self.cfg.endpoint, "control stream open");

        let period = self.cfg.stats_interval;
        let mut stats_tick = interval_at(Instant::now() + period, period);
        stats_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.handle(message, rec, &tx, welcomed).await,
                    Ok(None) => return SessionEnd::ClosedByServer,
                    Err(status) => return SessionEnd::Lost(status),
                },
                _ = stats_tick.tick() => {
                    let stamp = self.stamp.next_report();
                    send(&tx, wire::stats_report(stamp, rec.report())).await
                }
            }
        }
    }

    async fn handle(
        &mut self,
        message: pb::ServerMessage,
        rec: &mut Reconciler,
        tx: &mpsc::Sender<pb::ClientMessage>,
        welcomed: &mut bool,
    ) {
        match message.kind {
            Some(Kind::Welcome(welcome)) => {
                *welcomed = true;
                if !welcome.client_id.is_empty() && welcome.client_id != self.cfg.client_id {
                    tracing::warn!(
                        bundle_client_id = %self.cfg.client_id,
                        server_client_id = %welcome.client_id,
                        "server knows this client under another id"
                    );
                }
                let config = engine_config(&welcome);
                tracing::info!(
                    server_version = %welcome.server_version,
                    client_version = %self.cfg.client_version,
                    server_wire = welcome.wire_version,
                    client_wire = portunus_proto::WIRE_VERSION,
                    client_name = %welcome.client_name,
                    udp_flow_idle_secs = config.udp_flow_idle.as_secs(),
                    udp_max_flows_per_rule = config.udp_max_flows_per_rule,
                    "welcomed by the control plane"
                );
                rec.engine().set_config(config);
            }
            Some(Kind::RuleSet(set)) => {
                let mut desired = BTreeMap::new();
                let mut undecodable = Vec::new();
                for rule in &set.rules {
                    match portunus_proto::rule_from_pb(rule) {
                        Ok((id, owner, spec)) => {
                            desired.insert(id, Desired { owner, spec });
                        }
                        Err(e) => undecodable.push((rule.rule_id.clone(), wire::undecodable(e))),
                    }
                }
                let mut outcomes = rec.apply_set(desired).await;
                for (id, error) in undecodable {
                    outcomes.push(rec.reject(id, error).await);
                }
                for outcome in outcomes {
                    send(tx, wire::outcome(outcome)).await;
                }
            }
            Some(Kind::Push(rule)) => {
                let outcome = match portunus_proto::rule_from_pb(&rule) {
                    Ok((id, owner, spec)) => rec.apply_one(id, &owner, spec).await,
                    Err(e) => rec.reject(rule.rule_id.clone(), wire::undecodable(e)).await,
                };
                send(tx, wire::outcome(outcome)).await;
            }
            Some(Kind::Remove(remove)) => {
                send(tx, wire::outcome(rec.remove(&remove.rule_id).await)).await;
            }
            Some(Kind::OwnerRateLimit(envelope)) => {
                tracing::debug!(owner = %envelope.owner, present = envelope.rate_limit.is_some(), "owner rate limit");
                let limit = envelope
                    .rate_limit
                    .as_ref()
                    .map(portunus_proto::rate_limit_from_pb)
                    .filter(|l| !l.is_empty());
                match limit.map(|l| l.validate().map(|()| l)) {
                    Some(Err(e)) => {
                        tracing::warn!(owner = %envelope.owner, error = %e, "owner rate limit refused")
                    }
                    Some(Ok(l)) => rec.engine().set_owner_limit(&envelope.owner, Some(l)),
                    None => rec.engine().set_owner_limit(&envelope.owner, None),
                }
            }
            Some(Kind::QuotaGates(gates)) => {
                tracing::debug!(exhausted = gates.exhausted_owners.len(), "quota gates");
                rec.engine().set_exhausted_owners(&gates.exhausted_owners);
            }
            None => {
                tracing::debug!("ignoring a server message of a kind this client does not know")
            }
        }
    }

    fn log_end(&self, end: &SessionEnd, rec: &Reconciler) {
        let server = &self.cfg.endpoint;
        let rules_running = rec.running_ids().count();
        let rules_failed = rec.failed_ids().count();
        match end {
            SessionEnd::DialFailed(e) => match tls::pin_mismatch(e) {
                Some(mismatch) => tracing::error!(
                    %server,
                    error = %mismatch,
                    rules_running,
                    rules_failed,
                    "the server does not present the pinned certificate; credentials were not sent"
                ),
                None => tracing::warn!(
                    %server,
                    error = %tls::error_chain(e),
                    rules_running,
                    rules_failed,
                    "cannot reach the control plane"
                ),
            },
            SessionEnd::Refused(status) | SessionEnd::Lost(status)
                if status.code() == Code::Unauthenticated =>
            {
                tracing::error!(
                    %server,
                    status = %status.message(),
                    rules_running,
                    rules_failed,
                    "the server rejected this client's credential (revoked or unknown); \
                     re-enroll with `portunus-client enroll <URI>`; rules keep running meanwhile"
                )
            }
            SessionEnd::Refused(status) => tracing::warn!(
                %server,
                code = ?status.code(),
                status = %status.message(),
                rules_running,
                rules_failed,
                "the control plane refused the stream"
            ),
            SessionEnd::Lost(status) => tracing::warn!(
                %server,
                code = ?status.code(),
                status = %status.message(),
                rules_running,
                rules_failed,
                "control stream lost; rules keep running"
            ),
            SessionEnd::ClosedByServer => {
                tracing::warn!(
                    %server,
                    rules_running,
                    rules_failed,
                    "control stream closed by the server; rules keep running"
                )
            }
        }
    }
}

/// A failed send means the outbound half is gone; the inbound half reports
/// the same failure on its next read, which is where the session ends.
async fn send(tx: &mpsc::Sender<pb::ClientMessage>, message: pb::ClientMessage) {
    let _ = tx.send(message).await;
}

/// Zero means "not set" on the wire, so the engine keeps its defaults.
pub fn engine_config(welcome: &pb::Welcome) -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        udp_flow_idle: match welcome.udp_flow_idle_secs {
            0 => defaults.udp_flow_idle,
            secs => Duration::from_secs(secs.into()),
        },
        udp_max_flows_per_rule: match welcome.udp_max_flows_per_rule {
            0 => defaults.udp_max_flows_per_rule,
            n => n,
        },
    }
}

#[cfg(test)]
mod tests;
