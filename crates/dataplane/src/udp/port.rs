//! One listen port of a UDP rule: a single task that reads the listen
//! socket, owns the port's flow table, sets up new flows, carries the
//! replies its poller reports, and reaps idle flows. Aborting the task
//! drops all of it at once, listen socket included.

use super::io::{datagram_count, reply_source, Received, Socket};
use super::replies::{Replies, READS_PER_TURN};
use super::table::{Admit, Clock, FlowId, FlowTable, Millis};
use super::train::{with_train, Train};
use super::upstream::{on_upstream_error, OnError, SetupError, Upstream};
use super::UdpRule;
use crate::copy::Direction;
use crate::limit::{self, RuleLimits};
use crate::stats::RuleCounters;
use futures::stream::{FuturesUnordered, StreamExt};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Datagrams a flow may queue while its upstream is being set up, beyond
/// the first one, and the bytes they may take.
const PENDING_DATAGRAMS: usize = 8;
const PENDING_BYTES: usize = 16 * 1024;

/// A flow's state in its port's table.
enum FlowState {
    /// Its upstream is being resolved and connected; datagrams wait here.
    Pending(Pending),
    /// Its upstream is connected and watched under `token` for replies,
    /// which leave from `local_ip` when the source wrote to a specific
    /// address.
    Ready {
        up: Arc<Upstream>,
        token: usize,
        local_ip: Option<IpAddr>,
    },
}

#[derive(Default)]
struct Pending {
    /// Datagram buffers with their GRO stride.
    queue: Vec<(Vec<u8>, usize)>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, d: &Received<'_>) -> bool {
        let fits = self.queue.is_empty()
            || (self.queue.len() <= PENDING_DATAGRAMS
                && self.bytes + d.bytes.len() <= PENDING_BYTES);
        if fits {
            self.bytes += d.bytes.len();
            self.queue.push((d.bytes.to_vec(), d.stride));
        }
        fits
    }
}

/// The flow whose datagrams the train being gathered carries.
struct Boarding {
    source: SocketAddr,
    id: FlowId,
    up: Arc<Upstream>,
}

/// A flow whose upstream is being set up.
struct NewFlow {
    source: SocketAddr,
    id: FlowId,
    local_ip: Option<IpAddr>,
}

/// How often idle flows are looked for: a quarter of the idle timeout,
/// so a flow goes at most 25% past it.
pub(crate) fn reap_period(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(5))
}

/// What the port's receive path and its reply path share.
struct Shared {
    listen: Socket,
    counters: Arc<RuleCounters>,
    limits: RuleLimits,
    port_index: usize,
    clock: Clock,
}

struct Port {
    rule: Arc<UdpRule>,
    shared: Arc<Shared>,
    offset: u16,
    table: FlowTable<FlowState>,
    replies: Replies,
    /// Once the rule stops, the port only serves the flows it has.
    draining: bool,
}

/// Runs the port until its rule aborts it or, once `drain` fires, until
/// its last flow is gone.
pub(super) async fn run(
    rule: Arc<UdpRule>,
    listen: Socket,
    replies: Replies,
    offset: u16,
    drain: CancellationToken,
) {
    let port_index = usize::from(offset);
    let mut port = Port {
        table: FlowTable::new(rule.counters.clone(), rule.engine.flow_budget(), port_index),
        replies,
        shared: Arc::new(Shared {
            listen,
            counters: rule.counters.clone(),
            limits: rule.limits.clone(),
            port_index,
            clock: Clock::new(),
        }),
        rule,
        offset,
        draining: false,
    };
    let mut setups = FuturesUnordered::new();
    // Flows set up in place during a read, installed right after it.
    let mut set_up = Vec::new();
    let mut gate = port.rule.gate.watch();
    let mut reap = tokio::time::interval(reap_period(port.rule.engine.config().udp_flow_idle));
    reap.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if port.draining && port.table.is_empty() {
            debug!("drained");
            return;
        }
        tokio::select! {
            () = drain.cancelled(), if !port.draining => {
                debug!(flows = port.table.len(), "draining: existing flows only");
                port.draining = true;
            }
            ready = port.shared.listen.readable() => {
                if let Err(e) = ready {
                    warn!(error = %e, "listen socket failed, port stops");
                    return;
                }
                let (rule, offset) = (port.rule.clone(), port.offset);
                port.receive(|new| match rule.targets.connect_now(offset, &rule.counters) {
                    Some(result) => set_up.push((new, result)),
                    None => {
                        let rule = rule.clone();
                        setups.push(async move {
                            let result = rule.targets.connect(offset, &rule.counters).await;
                            (new, result)
                        });
                    }
                });
                for (new, result) in set_up.drain(..) {
                    port.install(new, result);
                }
            }
            Some((new, result)) = setups.next() => port.install(new, result),
            ready = port.replies.ready() => match ready {
                Ok(flows) => port.carry_replies(flows),
                Err(e) => {
                    warn!(error = %e, "reply poller failed, port stops");
                    return;
                }
            },
            _ = reap.tick() => port.reap(),
            Ok(()) = gate.changed() => {
                if *gate.borrow_and_update() {
                    port.close_all();
                }
            }
        }
    }
}

impl Port {
    fn counters(&self) -> &RuleCounters {
        &self.rule.counters
    }

    /// Reads one batch from the listen socket and routes each datagram;
    /// consecutive datagrams of one flow leave together as a train.
    fn receive(&mut self, mut new_flow: impl FnMut(NewFlow)) {
        let now = self.shared.clock.now();
        let cap = u64::from(self.rule.engine.config().udp_max_flows_per_rule);
        let shared = self.shared.clone();
        with_train(|train| {
            let mut boarding = None;
            let result = shared.listen.recv_batch(|d| {
                if let Some((id, up)) = self.inbound(&d, now, cap, &mut new_flow) {
                    self.board(&d, id, up, train, &mut boarding);
                }
            });
            self.depart(train, &mut boarding);
            match result {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => debug!(error = %e, "receive failed"),
            }
        });
    }

    /// Admits a datagram to its flow. Returns the flow's upstream when the
    /// datagram is to be sent there now; otherwise it was queued for a
    /// flow being set up, or dropped and counted.
    fn inbound(
        &mut self,
        d: &Received<'_>,
        now: Millis,
        cap: u64,
        new_flow: &mut impl FnMut(NewFlow),
    ) -> Option<(FlowId, Arc<Upstream>)> {
        // A refused source never has a flow, so only new sources pay this.
        if !self.rule.filter.admits(d.source.ip()) {
            debug!(source = %d.source, "datagram refused by the source filter");
            self.rule.counters.source_denied.add(d.datagrams());
            return None;
        }
        if self.rule.gate.is_closed() {
            self.rule.counters.quota_refused.add(d.datagrams());
            if self.table.contains(d.source) {
                // A flow set up just before the gate closed.
                self.close_all();
            }
            return None;
        }
        if self.draining && !self.table.contains(d.source) {
            debug!(source = %d.source, "draining, new source refused");
            return None;
        }
        let limits = &self.rule.limits;
        match self.table.try_admit(
            d.source,
            now,
            cap,
            || limits.admit(Instant::now()),
            || FlowState::Pending(Pending::default()),
        ) {
            Admit::Refused(reject) => {
                debug!(source = %d.source, reason = reject.reason(), "new flow refused by a rate limit");
                self.rule.counters.rate_limit_reject(reject);
                None
            }
            Admit::Overflow => {
                self.rule
                    .counters
                    .udp
                    .flows_dropped_overflow
                    .add(d.datagrams());
                None
            }
            Admit::New(id, state) => {
                if let FlowState::Pending(p) = state {
                    p.push(d);
                }
                new_flow(NewFlow {
                    source: d.source,
                    id,
                    local_ip: reply_source(d.local_ip),
                });
                None
            }
            Admit::Existing(id, FlowState::Pending(p)) => {
                if !p.push(d) {
                    debug!(source = %d.source, id, "flow not ready, datagram dropped");
                }
                None
            }
            Admit::Existing(id, FlowState::Ready { up, .. }) => {
                fits(limits, &self.rule.counters, limit::Direction::In, d).then(|| (id, up.clone()))
            }
        }
    }

    /// Puts a datagram on the train of its flow, sending the train of the
    /// flow before it first; a GRO train leaves at once, as it came.
    fn board(
        &mut self,
        d: &Received<'_>,
        id: FlowId,
        up: Arc<Upstream>,
        train: &mut Train,
        boarding: &mut Option<Boarding>,
    ) {
        let max = up.socket.max_gso_segments();
        let same_flow = boarding
            .as_ref()
            .is_some_and(|b| b.id == id && b.source == d.source);
        if same_flow && d.datagrams() == 1 && train.push(d.bytes, max) {
            return;
        }
        self.depart(train, boarding);
        if d.datagrams() > 1 {
            if send_in(&self.rule.counters, self.offset, &up, d.bytes, d.stride) {
                self.evict(d.source, id);
            }
            return;
        }
        train.push(d.bytes, max);
        *boarding = Some(Boarding {
            source: d.source,
            id,
            up,
        });
    }

    /// Sends the train to its flow's target.
    fn depart(&mut self, train: &mut Train, boarding: &mut Option<Boarding>) {
        let Some(b) = boarding.take() else {
            return;
        };
        let evict = !train.is_empty()
            && send_in(
                &self.rule.counters,
                self.offset,
                &b.up,
                train.bytes(),
                train.stride(),
            );
        train.clear();
        if evict {
            self.evict(b.source, b.id);
        }
    }

    /// Turns a pending flow whose setup finished into a running one: its
    /// queued datagrams go out and its socket is watched for replies.
    fn install(&mut self, new: NewFlow, result: Result<Upstream, SetupError>) {
        let up = match result {
            Ok(up) => Arc::new(up),
            Err(e) => {
                self.counters().connect_failures.inc();
                debug!(source = %new.source, error = %e, "no upstream for flow");
                self.table.remove(new.source, new.id);
                return;
            }
        };
        let Some(state) = self.table.get_mut(new.source, new.id) else {
            return;
        };
        let token = match self.replies.add(&up.socket, new.source, new.id) {
            Ok(token) => token,
            Err(e) => {
                // Out of kernel memory for the interest list: the flow
                // cannot carry replies, so it does not start.
                warn!(source = %new.source, error = %e, "flow not watched for replies, dropped");
                self.table.remove(new.source, new.id);
                return;
            }
        };
        let ready = FlowState::Ready {
            up: up.clone(),
            token,
            local_ip: new.local_ip,
        };
        let FlowState::Pending(pending) = std::mem::replace(state, ready) else {
            return;
        };
        debug!(source = %new.source, target = %up.peer, id = new.id, "flow started");
        for (bytes, stride) in pending.queue {
            let d = Received {
                source: new.source,
                local_ip: new.local_ip,
                bytes: &bytes,
                stride,
            };
            if forward(&self.rule.counters, &self.rule.limits, self.offset, &up, &d) {
                self.evict(new.source, new.id);
                return;
            }
        }
    }

    /// Reads the replies of the flows the poller reported and sends them
    /// back to their sources. A flow that still has replies queued after
    /// `READS_PER_TURN` batches gets another turn after the port's other
    /// work.
    fn carry_replies(&mut self, flows: Vec<(SocketAddr, FlowId)>) {
        let now = self.shared.clock.now();
        for &(source, id) in &flows {
            let Some(FlowState::Ready { up, local_ip, .. }) = self.table.get(source, id) else {
                continue;
            };
            let reply = Reply {
                source,
                local_ip: *local_ip,
                upstream: up,
                port: &self.shared,
            };
            match reply.carry(now) {
                Carried::Drained => {}
                Carried::More => self.replies.again(source, id),
                Carried::Failed(e) => self.failed(source, id, &e),
            }
        }
        self.replies.recycle(flows);
    }

    /// Removes a flow and stops watching its socket.
    fn evict(&mut self, source: SocketAddr, id: FlowId) {
        if let Some(FlowState::Ready { up, token, .. }) = self.table.remove(source, id) {
            self.replies.remove(token, &up.socket);
        }
    }

    /// A flow's upstream socket met an error that ends the flow.
    fn failed(&mut self, source: SocketAddr, id: FlowId, error: &io::Error) {
        debug!(%source, id, %error, "flow evicted");
        self.evict(source, id);
    }

    /// Ends every flow of the port: the owner's quota is spent.
    fn close_all(&mut self) {
        let flows = self.table.all();
        debug!(flows = flows.len(), "quota spent: flows closed");
        for (source, id) in flows {
            self.evict(source, id);
        }
    }

    fn reap(&mut self) {
        let idle = self.rule.engine.config().udp_flow_idle;
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let replied = |state: &FlowState| match state {
            FlowState::Ready { up, .. } => up.replied(),
            FlowState::Pending(_) => 0,
        };
        for (source, id) in self.table.idle(self.shared.clock.now(), idle, replied) {
            debug!(%source, id, "flow idle, reaped");
            self.evict(source, id);
        }
    }
}

/// Sends a source's datagrams to its flow's target and counts them;
/// datagrams over a bandwidth cap are dropped. Returns true when the error
/// means the flow must go.
fn forward(
    counters: &RuleCounters,
    limits: &RuleLimits,
    offset: u16,
    up: &Upstream,
    d: &Received<'_>,
) -> bool {
    fits(limits, counters, limit::Direction::In, d)
        && send_in(counters, offset, up, d.bytes, d.stride)
}

/// Sends datagrams (`stride` bytes each, the last may be shorter) to a
/// flow's target and counts them. Returns true when the error means the
/// flow must go.
fn send_in(
    counters: &RuleCounters,
    offset: u16,
    up: &Upstream,
    bytes: &[u8],
    stride: usize,
) -> bool {
    match up.socket.send(up.peer, None, bytes, stride) {
        Ok(()) => {
            counters
                .udp
                .datagrams_in
                .add(datagram_count(bytes.len(), stride));
            counters.record_bytes(
                usize::from(offset),
                up.target_index,
                Direction::Inbound,
                bytes.len(),
            );
            false
        }
        Err(e) => {
            debug!(target = %up.peer, error = %e, "datagrams to target not sent");
            on_upstream_error(&e) == OnError::Evict
        }
    }
}

/// Whether datagrams fit under the bandwidth caps of their direction;
/// those that do not are counted as dropped.
fn fits(
    limits: &RuleLimits,
    counters: &RuleCounters,
    dir: limit::Direction,
    d: &Received<'_>,
) -> bool {
    let fit = limits.try_charge(dir, d.bytes.len() as u64, Instant::now());
    if !fit {
        counters.rate_limit_drop(d.datagrams());
    }
    fit
}

/// One flow's reply path: its upstream socket in, the listen socket out.
struct Reply<'a> {
    source: SocketAddr,
    local_ip: Option<IpAddr>,
    upstream: &'a Upstream,
    port: &'a Shared,
}

/// How a flow's turn at reading replies ended.
enum Carried {
    /// Its socket has nothing more queued.
    Drained,
    /// It may have more: the turn ended first.
    More,
    /// An error that ends the flow.
    Failed(io::Error),
}

impl Reply<'_> {
    /// Reads up to `READS_PER_TURN` batches of replies and sends each
    /// batch back to the source.
    fn carry(&self, now: Millis) -> Carried {
        for _ in 0..READS_PER_TURN {
            let mut got = false;
            let result = with_train(|train| {
                let read = self.upstream.socket.recv_batch(|d| {
                    got = true;
                    self.gather(&d, train);
                });
                self.depart(train);
                read
            });
            if got {
                self.upstream.mark_reply(now);
            }
            match result {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Carried::Drained,
                Err(e) if on_upstream_error(&e) == OnError::Evict => return Carried::Failed(e),
                Err(e) => {
                    debug!(source = %self.source, error = %e, "upstream receive failed");
                    return Carried::Drained;
                }
            }
        }
        Carried::More
    }

    /// Puts a reply on the train back to the source, sending the train
    /// first when the reply cannot join it; a GRO train leaves at once.
    fn gather(&self, d: &Received<'_>, train: &mut Train) {
        // A connected socket only takes its peer's datagrams; anything
        // else would have been filtered by the kernel.
        let port = self.port;
        if !fits(&port.limits, &port.counters, limit::Direction::Out, d) {
            return;
        }
        let max = port.listen.max_gso_segments();
        if d.datagrams() > 1 {
            self.depart(train);
            self.reply(d.bytes, d.stride);
        } else if !train.push(d.bytes, max) {
            self.depart(train);
            train.push(d.bytes, max);
        }
    }

    fn depart(&self, train: &mut Train) {
        if !train.is_empty() {
            self.reply(train.bytes(), train.stride());
            train.clear();
        }
    }

    fn reply(&self, bytes: &[u8], stride: usize) {
        let port = self.port;
        match port.listen.send(self.source, self.local_ip, bytes, stride) {
            Ok(()) => {
                port.counters
                    .udp
                    .datagrams_out
                    .add(datagram_count(bytes.len(), stride));
                port.counters.record_bytes(
                    port.port_index,
                    self.upstream.target_index,
                    Direction::Outbound,
                    bytes.len(),
                );
            }
            Err(e) => debug!(source = %self.source, error = %e, "replies not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reap_period_table() {
        let cases = [
            (Duration::from_secs(60), Duration::from_secs(5)),
            (Duration::from_secs(30), Duration::from_secs(5)),
            (Duration::from_secs(8), Duration::from_secs(2)),
            (Duration::from_millis(200), Duration::from_millis(50)),
            (Duration::from_millis(1), Duration::from_millis(10)),
            (Duration::ZERO, Duration::from_millis(10)),
        ];
        for (idle, want) in cases {
            assert_eq!(reap_period(idle), want, "{idle:?}");
        }
    }
}
