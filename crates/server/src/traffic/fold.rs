//! How one cumulative report becomes a delta: the pure arithmetic behind
//! the history, tested as a table. Edges count from zero when their process
//! or the rule restarts; reports can arrive twice or late; the server can
//! restart between any two of them. The cursor (the last report folded for
//! a rule) is what makes each report count once.

use serde::Serialize;

/// The counters history keeps. `connections` counts TCP connections, or
/// UDP flows for a UDP rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
}

impl Counters {
    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes_in.saturating_add(self.bytes_out)
    }

    pub fn add(&mut self, other: &Counters) {
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.connections = self.connections.saturating_add(other.connections);
    }

    /// `self - before`, or None when any counter went down (they count
    /// from zero again).
    fn since(&self, before: &Counters) -> Option<Counters> {
        Some(Counters {
            bytes_in: self.bytes_in.checked_sub(before.bytes_in)?,
            bytes_out: self.bytes_out.checked_sub(before.bytes_out)?,
            connections: self.connections.checked_sub(before.connections)?,
        })
    }
}

/// Where a rule's counters stood at the last report folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The reporting client process (empty from clients before stamps).
    pub run_id: String,
    /// The rule's start within that process.
    pub instance: u64,
    /// The report's number within that process.
    pub seq: u64,
    pub counters: Counters,
}

/// What a report does to a rule's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add the delta (possibly zero) and move the cursor to the report.
    Count(Counters),
    /// Already folded (a duplicate or a late report): change nothing.
    Skip,
}

/// Folds one report (`at` the cursor it would become) onto the last one.
///
/// - No cursor, or another process or rule start: the counters began at
///   zero, so all of them are new.
/// - Same start, a report number not past the cursor's: seen already.
/// - Same start, counters lower than the cursor's: the rule counted from
///   zero again without a new start number (a client without stamps), so
///   all of them are new.
/// - Otherwise the difference is new.
pub fn step(cursor: Option<&Cursor>, report: &Cursor) -> Step {
    let Some(c) = cursor else {
        return Step::Count(report.counters);
    };
    if c.run_id != report.run_id || c.instance != report.instance {
        return Step::Count(report.counters);
    }
    let stamped = !report.run_id.is_empty();
    if stamped && report.seq <= c.seq {
        return Step::Skip;
    }
    Step::Count(
        report
            .counters
            .since(&c.counters)
            .unwrap_or(report.counters),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(run: &str, instance: u64, seq: u64, bytes: u64) -> Cursor {
        Cursor {
            run_id: run.into(),
            instance,
            seq,
            counters: Counters {
                bytes_in: bytes,
                bytes_out: 2 * bytes,
                connections: bytes / 100,
            },
        }
    }

    fn count(bytes: u64) -> Step {
        Step::Count(Counters {
            bytes_in: bytes,
            bytes_out: 2 * bytes,
            connections: bytes / 100,
        })
    }

    #[test]
    fn step_table() {
        let cases = [
            ("first report", None, at("a", 1, 1, 500), count(500)),
            (
                "next report",
                Some(at("a", 1, 1, 500)),
                at("a", 1, 2, 800),
                count(300),
            ),
            (
                "nothing moved",
                Some(at("a", 1, 2, 800)),
                at("a", 1, 3, 800),
                count(0),
            ),
            (
                "duplicate",
                Some(at("a", 1, 2, 800)),
                at("a", 1, 2, 800),
                Step::Skip,
            ),
            (
                "late",
                Some(at("a", 1, 5, 900)),
                at("a", 1, 4, 850),
                Step::Skip,
            ),
            (
                "client restarted",
                Some(at("a", 1, 9, 900)),
                at("b", 1, 1, 200),
                count(200),
            ),
            (
                "restart, more than before",
                Some(at("a", 1, 9, 900)),
                at("b", 1, 1, 1200),
                count(1200),
            ),
            (
                "rule re-enabled",
                Some(at("a", 1, 9, 900)),
                at("a", 2, 10, 50),
                count(50),
            ),
            (
                "unstamped, grows",
                Some(at("", 0, 0, 100)),
                at("", 0, 0, 300),
                count(200),
            ),
            (
                "unstamped, repeated",
                Some(at("", 0, 0, 300)),
                at("", 0, 0, 300),
                count(0),
            ),
            (
                "unstamped, reset",
                Some(at("", 0, 0, 300)),
                at("", 0, 0, 100),
                count(100),
            ),
            (
                "stamped after unstamped",
                Some(at("", 0, 0, 300)),
                at("a", 1, 1, 40),
                count(40),
            ),
        ];
        for (name, cursor, report, want) in cases {
            assert_eq!(step(cursor.as_ref(), &report), want, "{name}");
        }
    }

    #[test]
    fn a_sequence_with_restarts_counts_each_byte_once() {
        // Two processes, a report of each arriving twice.
        let reports = [
            at("a", 1, 1, 100),
            at("a", 1, 2, 250),
            at("a", 1, 2, 250),
            at("b", 1, 1, 30),
            at("b", 1, 1, 30),
            at("b", 1, 2, 70),
        ];
        let mut cursor: Option<Cursor> = None;
        let mut total = Counters::default();
        for r in reports {
            if let Step::Count(d) = step(cursor.as_ref(), &r) {
                total.add(&d);
                cursor = Some(r);
            }
        }
        assert_eq!(total.bytes_in, 250 + 70);
    }
}
