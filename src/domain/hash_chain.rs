//! The audit hash chain of DESIGN.md §7: `hash = SHA-256(prev_hash ‖ canonical JSON of the event)`, and the
//! verifier that walks stored events in sequence order and names the first one that does not fit.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::canonical_json::to_canonical_string;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed content of one audit event (everything but `prev_hash` and `hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainedEvent {
    pub seq: i64,
    pub id: String,
    /// RFC 3339 UTC with microseconds, the precision both databases keep.
    pub occurred_at: String,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub organization_id: Option<String>,
    pub hat: Option<String>,
    pub acting: bool,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// Canonical JSON text of the entity before/after the change, when recorded.
    pub before_state: Option<String>,
    pub after_state: Option<String>,
}

impl ChainedEvent {
    pub fn canonical_json(&self) -> String {
        // Serializing a plain struct of strings, bools and integers cannot fail.
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        to_canonical_string(&value)
    }
}

/// Hex SHA-256 of `prev_hash` followed by the canonical JSON of `event`.
pub fn chain_hash(prev_hash: &str, event: &ChainedEvent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(event.canonical_json().as_bytes());
    hex::encode(hasher.finalize())
}

/// Result of walking the chain, as `audit verify` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub intact: bool,
    pub events_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first sequence number whose event is missing, altered or mis-linked; `null` when intact.
    pub first_broken_seq: Option<i64>,
    /// Events written but not sealed into the chain yet (the sealer chains them within its interval); not
    /// covered by this verification.
    pub unsealed_events: u64,
    /// Milliseconds the oldest unsealed event has waited; `null` when every event is sealed.
    pub oldest_unsealed_age_ms: Option<i64>,
}

/// Incremental verifier: feed events in ascending `seq`, then compare with the stored head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: String,
    events_checked: u64,
    first_broken_seq: Option<i64>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            events_checked: 0,
            first_broken_seq: None,
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one stored event: its sequence follows the last, it links to the last hash, and its own hash
    /// recomputes. After a break the walk goes on (counting) but keeps the first broken number.
    pub fn check(&mut self, event: &ChainedEvent, stored_prev_hash: &str, stored_hash: &str) {
        self.events_checked += 1;
        let fits = event.seq == self.last_seq + 1
            && stored_prev_hash == self.last_hash
            && chain_hash(stored_prev_hash, event) == stored_hash;
        if !fits && self.first_broken_seq.is_none() {
            // A gap means the missing number is the first broken one.
            self.first_broken_seq = Some((self.last_seq + 1).min(event.seq));
        }
        self.last_seq = event.seq;
        self.last_hash = stored_hash.to_owned();
    }

    /// Compares the walk with the stored chain head (which every append moves) and reports.
    pub fn finish(mut self, head_seq: i64, head_hash: &str) -> VerifyReport {
        if self.first_broken_seq.is_none() && (head_seq != self.last_seq || head_hash != self.last_hash) {
            self.first_broken_seq = Some(self.last_seq.min(head_seq) + 1);
        }
        VerifyReport {
            intact: self.first_broken_seq.is_none(),
            events_checked: self.events_checked,
            head_seq,
            head_hash: head_hash.to_owned(),
            first_broken_seq: self.first_broken_seq,
            unsealed_events: 0,
            oldest_unsealed_age_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(seq: i64, action: &str) -> ChainedEvent {
        ChainedEvent {
            seq,
            id: format!("id-{seq}"),
            occurred_at: "2026-11-29T10:00:00.000001Z".into(),
            actor_id: Some("u1".into()),
            actor_username: Some("amina".into()),
            organization_id: None,
            hat: Some("admin".into()),
            acting: false,
            action: action.into(),
            entity_type: "user".into(),
            entity_id: Some("e1".into()),
            request_id: Some("r1".into()),
            client_addr: None,
            outcome: "success".into(),
            reason: None,
            before_state: None,
            after_state: Some(r#"{"a":1}"#.into()),
        }
    }

    /// Builds a chain of `n` events: (event, prev_hash, hash).
    fn chain(n: i64) -> Vec<(ChainedEvent, String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let ev = event(seq, &format!("act{seq}"));
                let hash = chain_hash(&prev, &ev);
                let row = (ev, prev.clone(), hash.clone());
                prev = hash;
                row
            })
            .collect()
    }

    fn verify(rows: &[(ChainedEvent, String, String)]) -> VerifyReport {
        let mut v = ChainVerifier::new();
        for (ev, prev, hash) in rows {
            v.check(ev, prev, hash);
        }
        let (seq, hash) = rows
            .last()
            .map(|r| (r.0.seq, r.2.clone()))
            .unwrap_or((0, GENESIS_HASH.into()));
        v.finish(seq, &hash)
    }

    #[test]
    fn empty_chain_is_intact() {
        let r = ChainVerifier::new().finish(0, GENESIS_HASH);
        assert!(r.intact);
        assert_eq!(r.events_checked, 0);
    }

    #[test]
    fn hash_depends_on_previous_hash() {
        let ev = event(1, "x");
        assert_ne!(chain_hash(GENESIS_HASH, &ev), chain_hash(&"1".repeat(64), &ev));
        assert_eq!(chain_hash(GENESIS_HASH, &ev).len(), 64);
    }

    #[test]
    fn head_ahead_of_events_is_broken_at_the_missing_seq() {
        let rows = chain(3);
        let mut v = ChainVerifier::new();
        for (ev, prev, hash) in &rows {
            v.check(ev, prev, hash);
        }
        let r = v.finish(4, "f".repeat(64).as_str());
        assert_eq!(r.first_broken_seq, Some(4));
        assert!(!r.intact);
    }

    proptest! {
        #[test]
        fn untouched_chain_verifies(n in 0i64..30) {
            let r = verify(&chain(n));
            prop_assert!(r.intact);
            prop_assert_eq!(r.events_checked, n as u64);
        }

        #[test]
        fn altering_any_event_is_found_at_its_seq(n in 1i64..30, pick in any::<prop::sample::Index>(), field in 0usize..4) {
            let mut rows = chain(n);
            let i = pick.index(rows.len());
            match field {
                0 => rows[i].0.action.push('!'),
                1 => rows[i].0.after_state = Some(r#"{"a":2}"#.into()),
                2 => rows[i].0.acting = !rows[i].0.acting,
                _ => rows[i].0.reason = Some("rewritten".into()),
            }
            let r = verify(&rows);
            prop_assert!(!r.intact);
            prop_assert_eq!(r.first_broken_seq, Some(i as i64 + 1));
        }

        #[test]
        fn deleting_an_event_is_found_at_the_gap(n in 2i64..30, pick in any::<prop::sample::Index>()) {
            let mut rows = chain(n);
            let i = pick.index(rows.len() - 1);
            rows.remove(i);
            let r = verify(&rows);
            prop_assert!(!r.intact);
            prop_assert_eq!(r.first_broken_seq, Some(i as i64 + 1));
        }
    }
}
