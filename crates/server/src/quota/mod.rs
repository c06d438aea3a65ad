//! Traffic quotas: whether an owner's quota on a client is spent, and the
//! gates each connected client is told to close. The store keeps the
//! usage (`store::quotas`); this module decides and tells.

pub mod period;

use crate::metrics::{QuotaFigures, QuotaLabels};
use crate::state::Shared;
use crate::store::{self, clients, quotas::QuotaRow, StoreResult};
use portunus_proto::pb::{self, server_message};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// Where a quota stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Bytes left in the period.
    Open,
    /// The period's bytes are used up.
    Exhausted,
    /// Past its end date.
    Expired,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Open => "ok",
            Standing::Exhausted => "exhausted",
            Standing::Expired => "expired",
        }
    }

    /// Whether the owner's traffic on the client is cut off.
    pub fn cuts_off(self) -> bool {
        self != Standing::Open
    }
}

pub fn standing(q: &QuotaRow, now: i64) -> Standing {
    if q.ends_at.is_some_and(|end| now >= end) {
        Standing::Expired
    } else if q.used_bytes >= q.monthly_bytes {
        Standing::Exhausted
    } else {
        Standing::Open
    }
}

/// Owners whose traffic is cut off, per client id.
pub type Cutoffs = BTreeMap<String, BTreeSet<String>>;

/// The cut-off owners of every client.
pub fn cutoffs(conn: &crate::store::Connection, now: i64) -> StoreResult<Cutoffs> {
    cutoffs_among(conn, None, now)
}

/// The owners cut off on one client: what its session opens with.
pub fn cutoffs_of(
    conn: &crate::store::Connection,
    client_id: &str,
    now: i64,
) -> StoreResult<BTreeSet<String>> {
    Ok(cutoffs_among(conn, Some(client_id), now)?
        .remove(client_id)
        .unwrap_or_default())
}

fn cutoffs_among(
    conn: &crate::store::Connection,
    client_id: Option<&str>,
    now: i64,
) -> StoreResult<Cutoffs> {
    let mut out = Cutoffs::new();
    for q in store::quotas::list(conn, client_id, None)? {
        if standing(&q, now).cuts_off() {
            out.entry(q.client_id).or_default().insert(q.owner);
        }
    }
    Ok(out)
}

/// The message that tells a client its complete list of cut-off owners.
pub fn gates_message(owners: &BTreeSet<String>) -> pb::ServerMessage {
    pb::ServerMessage {
        kind: Some(server_message::Kind::QuotaGates(pb::QuotaGates {
            exhausted_owners: owners.iter().cloned().collect(),
        })),
    }
}

/// What each connected client was last told, so a change is sent once.
#[derive(Default)]
pub struct Gates {
    told: Mutex<HashMap<String, BTreeSet<String>>>,
    /// One evaluation at a time: two racing ones could otherwise send a
    /// client an older list after a newer one.
    evaluating: tokio::sync::Mutex<()>,
}

impl Gates {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.told.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what a client's opening messages told it.
    pub fn opened(&self, client_id: &str, owners: BTreeSet<String>) {
        self.lock().insert(client_id.to_string(), owners);
    }
}

/// Reads every quota, refreshes the quota series and tells each connected
/// client whose cut-off owners changed. Called after reports are folded,
/// after a quota changes, and periodically (periods roll over and end
/// dates pass without any report).
pub async fn evaluate(state: &Shared) -> StoreResult<()> {
    let _one = state.quota_gates.evaluating.lock().await;
    let now = store::now();
    let (rows, names) = state
        .store
        .call(move |c| {
            let rows = store::quotas::list(c, None, None)?;
            let names: HashMap<String, String> = clients::list(c)?
                .into_iter()
                .map(|cl| (cl.id, cl.name))
                .collect();
            Ok((rows, names))
        })
        .await?;
    let figures: Vec<QuotaFigures> = rows
        .iter()
        .map(|q| QuotaFigures {
            labels: QuotaLabels {
                client: names.get(&q.client_id).cloned().unwrap_or_default(),
                owner: q.owner.clone(),
            },
            used_bytes: q.used_bytes,
            limit_bytes: q.monthly_bytes,
        })
        .collect();
    state.metrics.set_quotas(&figures);
    let mut now_cut = Cutoffs::new();
    for q in &rows {
        if standing(q, now).cuts_off() {
            now_cut
                .entry(q.client_id.clone())
                .or_default()
                .insert(q.owner.clone());
        }
    }
    let changed: Vec<(String, BTreeSet<String>)> = {
        let told = state.quota_gates.lock();
        told.iter()
            .filter_map(|(client, was)| {
                let is = now_cut.get(client).cloned().unwrap_or_default();
                (&is != was).then(|| (client.clone(), is))
            })
            .collect()
    };
    for (client, owners) in changed {
        if state.registry.send(&client, gates_message(&owners)).await {
            tracing::info!(client_id = %client, cut_off = ?owners, "quota gates sent");
            state.quota_gates.lock().insert(client, owners);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::period::Reset;

    #[test]
    fn standing_table() {
        let q = |used: u64, ends_at: Option<i64>| QuotaRow {
            client_id: "c".into(),
            owner: "o".into(),
            monthly_bytes: 100,
            reset: Reset::Monthly(1),
            ends_at,
            period_start: 0,
            used_bytes: used,
            updated_at: 0,
        };
        let cases = [
            (q(0, None), Standing::Open),
            (q(99, None), Standing::Open),
            (q(100, None), Standing::Exhausted),
            (q(500, None), Standing::Exhausted),
            // The end is the first moment traffic is no longer allowed.
            (q(0, Some(1001)), Standing::Open),
            (q(0, Some(1000)), Standing::Expired),
            (q(0, Some(999)), Standing::Expired),
            (q(100, Some(10)), Standing::Expired),
        ];
        for (quota, want) in cases {
            assert_eq!(standing(&quota, 1000), want, "{quota:?}");
            assert_eq!(want.cuts_off(), want != Standing::Open);
        }
    }
}
