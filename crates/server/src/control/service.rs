//! `Redeem` and `Connect`. Clients authenticate here, by bearer hash, and
//! nowhere else.

use super::incoming::ConnInfo;
use super::registry::Outcome;
use super::session_view::SessionView;
use crate::api::owner_caps::envelope_message;
use crate::metrics::RuleLabels;
use crate::secrets::{hash_token, new_token};
use crate::state::Shared;
use crate::store::{self, clients, enrollments, owner_caps, rules, settings, StoreError};
use crate::throttle::Key;
use portunus_domain::{DomainError, ErrorCode};
use portunus_proto::pb::{self, client_message, control_server::Control, server_message};
use std::time::Instant;
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone)]
pub struct ControlService {
    state: Shared,
}

impl ControlService {
    pub fn new(state: Shared) -> ControlService {
        ControlService { state }
    }
}

fn internal(e: StoreError) -> Status {
    let d = DomainError::from(e);
    match d.code {
        ErrorCode::StoreBusy => Status::unavailable(d.message),
        ErrorCode::FailedPrecondition => Status::failed_precondition(d.message),
        _ => Status::internal(d.message),
    }
}

fn bearer(req_meta: &tonic::metadata::MetadataMap) -> Option<String> {
    let v = req_meta.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The oldest client wire version this server serves fully. An older
/// client still gets its rules, but it does not send every field the
/// server reads, so what it leaves out reads as zero.
pub const MIN_CLIENT_WIRE_VERSION: u32 = 1;

/// Logs who connected with which build, and warns when the client is too
/// old for this server: the operator learns it from the server's log
/// without visiting the edge.
fn on_hello(client: &str, h: &pb::Hello) {
    if h.wire_version < MIN_CLIENT_WIRE_VERSION {
        tracing::warn!(
            client,
            client_version = %h.client_version,
            client_wire = h.wire_version,
            needed_wire = MIN_CLIENT_WIRE_VERSION,
            "client is older than the wire this server needs; upgrade portunus-client on that host"
        );
    } else {
        if h.wire_version < portunus_proto::QUOTA_WIRE_VERSION {
            tracing::warn!(
                client,
                client_wire = h.wire_version,
                "client does not enforce traffic quotas; upgrade portunus-client on that host"
            );
        }
        tracing::info!(
            client,
            client_version = %h.client_version,
            client_wire = h.wire_version,
            hostname = %h.hostname,
            "client hello"
        );
    }
}

fn outcome_of(o: &pb::RuleOutcome) -> Option<Outcome> {
    use pb::rule_outcome::Kind;
    match Kind::try_from(o.kind).ok()? {
        Kind::Activated => Some(Outcome::Activated),
        Kind::Failed => Some(Outcome::Failed {
            reason: o.reason.clone(),
            detail: o.detail.clone(),
        }),
        Kind::Removed => Some(Outcome::Removed),
        Kind::Unspecified => None,
    }
}

impl ControlService {
    /// Makes `view` current when something was sent to the client since
    /// it read the client's rules. False when the store cannot answer.
    async fn refresh(&self, view: &mut SessionView, client_id: &str) -> bool {
        let Some(read_at) = view.stale() else {
            return true;
        };
        let cid = client_id.to_string();
        match self
            .state
            .store
            .call(move |c| rules::list(c, Some(&cid), None))
            .await
        {
            Ok(rows) => {
                view.refresh(read_at, rows);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the client's rules");
                false
            }
        }
    }

    async fn handle_outcome(&self, view: &mut SessionView, client_id: &str, o: pb::RuleOutcome) {
        let Some(outcome) = outcome_of(&o) else {
            return;
        };
        let (state, reason) = match &outcome {
            Outcome::Activated => (Some(rules::RuleState::Active), None),
            Outcome::Failed { reason, .. } => {
                (Some(rules::RuleState::Failed), Some(reason.clone()))
            }
            Outcome::Removed => (None, None),
        };
        if let Some(state) = state {
            // A reconnecting edge confirms every rule it kept; only a change
            // is written.
            let unchanged = self.refresh(view, client_id).await
                && view.holds(&o.rule_id, state, reason.as_deref());
            if !unchanged {
                let (id, stored) = (o.rule_id.clone(), reason.clone());
                // The store is updated before the waiter learns the outcome,
                // so a listing right after push-rule returns shows the new
                // state.
                match self
                    .state
                    .store
                    .write(move |tx| rules::set_state(tx, &id, state, stored.as_deref()))
                    .await
                {
                    Ok(()) => view.recorded(&o.rule_id, state, reason),
                    Err(e) => {
                        tracing::warn!(error = %e, rule = %o.rule_id, "cannot record rule outcome")
                    }
                }
            }
        }
        self.state.registry.deliver_outcome(&o.rule_id, outcome);
    }

    async fn handle_stats(
        &self,
        view: &mut SessionView,
        client_id: &str,
        client_name: &str,
        report: pb::StatsReport,
    ) {
        if !self.refresh(view, client_id).await {
            return;
        }
        let at = store::now();
        for stats in report.rules {
            // Reports for rules the server no longer has are stale; a
            // series for them would outlive the rule.
            let Some(owner) = view.owner(&stats.rule_id).map(str::to_string) else {
                continue;
            };
            let cursor = crate::traffic::Cursor {
                run_id: report.run_id.clone(),
                instance: stats.instance,
                seq: report.seq,
                counters: crate::traffic::Counters {
                    bytes_in: stats.bytes_in,
                    bytes_out: stats.bytes_out,
                    connections: stats.connections_total,
                },
            };
            if !view.repeats(&stats.rule_id, &cursor) {
                self.state.traffic.record(crate::traffic::Sample {
                    rule_id: stats.rule_id.clone(),
                    client_id: client_id.to_string(),
                    owner: owner.clone(),
                    at,
                    report: cursor,
                });
            }
            let labels = RuleLabels {
                client: client_name.to_string(),
                rule: stats.rule_id.clone(),
                owner,
            };
            self.state
                .stats
                .record(&self.state.metrics, labels, stats, at);
        }
    }
}

/// The peer of a call: from the control port's own connection info, or
/// from tonic's when served on a plain listener.
fn remote<T>(request: &Request<T>) -> Option<std::net::SocketAddr> {
    request
        .extensions()
        .get::<ConnInfo>()
        .map(|c| c.remote)
        .or_else(|| request.remote_addr())
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        // Codes are guessed from the public control port: failures are
        // throttled per source like password guesses, counted and logged.
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let source = remote(&request).map(|a| a.ip());
        let keys: Vec<Key> = source.into_iter().map(Key::Source).collect();
        if let Some(wait) = self.state.throttle.blocked(&keys, Instant::now()) {
            self.state.metrics.auth_failure("rate_limited");
            return Err(Status::resource_exhausted(format!(
                "too many failed enrollment attempts; retry in {} s",
                wait.as_secs().max(1)
            )));
        }
        let code_hash = hash_token(&request.get_ref().code);
        let token = new_token();
        let token_hash = hash_token(&token);
        let resolver = self.state.endpoints.clone();
        let result = self
            .state
            .store
            .call(move |conn| {
                store::write_tx(conn, |tx| {
                    let Some(e) = enrollments::redeemable(tx, &code_hash)? else {
                        return Ok(Err(Status::permission_denied(
                            "the enrollment code is invalid, expired, superseded or already used",
                        )));
                    };
                    // Rows without a stored endpoint resolve now. A failure
                    // is returned as an error so the transaction rolls back:
                    // the code stays usable and the token is not rotated.
                    let endpoint = match &e.endpoint {
                        Some(ep) => ep.clone(),
                        None => {
                            let over = settings::get(tx, settings::ADVERTISED_ENDPOINT)?;
                            resolver
                                .resolve(over.as_deref())
                                .map_err(|err| {
                                    DomainError::new(
                                        ErrorCode::FailedPrecondition,
                                        format!(
                                            "cannot resolve the advertised endpoint: {}; \
                                         fix it and retry, the enrollment code is still valid",
                                            err.message
                                        ),
                                    )
                                })?
                                .endpoint
                        }
                    };
                    let client = clients::get(tx, &e.client_id)?;
                    clients::set_token(tx, &client.id, &token_hash)?;
                    enrollments::mark_redeemed(tx, &e.id)?;
                    Ok(Ok((client, endpoint)))
                })
            })
            .await
            .map_err(internal)?;
        let (client, endpoint) = match result {
            Ok(found) => found,
            Err(status) => {
                if status.code() == tonic::Code::PermissionDenied {
                    self.state.throttle.failed(&keys, Instant::now());
                    self.state.metrics.auth_failure("invalid_enrollment_code");
                    tracing::warn!(
                        source = ?source,
                        "enrollment refused: the code is invalid, expired, superseded or used"
                    );
                }
                return Err(status);
            }
        };
        // A new credential replaces the old one: end any stream still
        // authenticated by it.
        self.state.registry.kick(
            &client.id,
            Status::unauthenticated("client credential was replaced"),
        );
        if let Some(conn) = conn {
            conn.authenticated();
        }
        tracing::info!(client = %client.name, client_id = %client.id, "client enrolled");
        Ok(Response::new(pb::RedeemResponse {
            client_id: client.id,
            client_name: client.name,
            server_endpoint: endpoint,
            token,
        }))
    }

    type SessionStream = super::registry::SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::ClientMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let remote = remote(&request);
        let refuse = |reason: &str, message: &'static str| {
            self.state.metrics.auth_failure(reason);
            tracing::warn!(remote = ?remote, reason, "client stream refused");
            Status::unauthenticated(message)
        };
        let Some(token) = bearer(request.metadata()) else {
            return Err(refuse(
                "missing_client_token",
                "missing client bearer token",
            ));
        };
        let hash = hash_token(&token);
        let client = self
            .state
            .store
            .call(move |c| clients::by_token_hash(c, &hash))
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                refuse(
                    "invalid_client_token",
                    "invalid or revoked client credential",
                )
            })?;
        if let Some(conn) = request.extensions().get::<ConnInfo>() {
            conn.authenticated();
        }
        let mut inbound = request.into_inner();

        let cid = client.id.clone();
        let (desired, envelopes, cut_off) = self
            .state
            .store
            .call(move |c| {
                let cut_off = crate::quota::cutoffs_of(c, &cid, store::now())?;
                Ok((
                    rules::list_enabled(c, &cid)?,
                    owner_caps::list(c, &cid)?,
                    cut_off,
                ))
            })
            .await
            .map_err(internal)?;

        let welcome = pb::ServerMessage {
            kind: Some(server_message::Kind::Welcome(pb::Welcome {
                server_version: portunus_about::LONG.to_string(),
                wire_version: portunus_proto::WIRE_VERSION,
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                udp_flow_idle_secs: self.state.config.udp_flow_idle_secs,
                udp_max_flows_per_rule: self.state.config.udp_max_flows_per_rule,
            })),
        };
        let set = pb::ServerMessage {
            kind: Some(server_message::Kind::RuleSet(pb::RuleSet {
                rules: desired
                    .iter()
                    .map(|r| portunus_proto::rule_to_pb(&r.id, &r.owner, &r.spec))
                    .collect(),
            })),
        };
        // Envelopes and quota gates go before the rules so no rule starts
        // without its cap, or forwards for an owner whose quota is spent.
        let mut opening = vec![welcome];
        opening.extend(
            envelopes
                .iter()
                .map(|(owner, l)| envelope_message(owner, Some(l))),
        );
        opening.push(crate::quota::gates_message(&cut_off));
        opening.push(set);
        let reg = self
            .state
            .registry
            .register(&client.id, remote, store::now(), opening);
        self.state.quota_gates.opened(&client.id, cut_off);
        self.state
            .metrics
            .clients_connected
            .set(self.state.registry.connected_count() as i64);
        tracing::info!(client = %client.name, remote = ?remote, rules = desired.len(), "client connected");

        let this = self.clone();
        let generation = reg.generation;
        let mut view = SessionView::new(reg.sent);
        let mut stop = reg.stop;
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = &mut stop => break,
                    msg = inbound.message() => msg,
                };
                match msg {
                    Ok(Some(m)) => match m.kind {
                        Some(client_message::Kind::Hello(h)) => on_hello(&client.name, &h),
                        Some(client_message::Kind::Outcome(o)) => {
                            this.handle_outcome(&mut view, &client.id, o).await
                        }
                        Some(client_message::Kind::Stats(s)) => {
                            this.handle_stats(&mut view, &client.id, &client.name, s)
                                .await
                        }
                        None => {}
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(client = %client.name, error = %e, "control stream error");
                        break;
                    }
                }
            }
            this.state.registry.unregister(&client.id, generation);
            this.state
                .metrics
                .clients_connected
                .set(this.state.registry.connected_count() as i64);
            tracing::info!(client = %client.name, "client disconnected");
        });
        Ok(Response::new(reg.outbound))
    }
}
