//! The blocking-query index rule (reference §2.5, §8, §9), in one place.
//!
//! Every blocking loop (the [`crate::watch`] helper, the runtime's watcher and leader
//! election, the CLI's `push --wait`) feeds each answer's `X-Consul-Index` /
//! `X-Nomad-Index` through [`next_index`] and blocks on what it says:
//! - the first read is non-blocking (index 0);
//! - an index lower than the one the loop blocked on means the server's state was
//!   replaced (snapshot restore, tombstone reaping of a listed prefix's highest key,
//!   upgrade): whatever the caller derived from earlier answers is not comparable any
//!   more, so it relists with index 0;
//! - an index below 1 is never blocked on: `index=0` answers at once, and a fresh Nomad
//!   reports index 0 for an empty table, so reusing it would make the loop spin. Both
//!   sides of the comparison are raised to 1, so a server that keeps answering 0 (sent
//!   back as 1) is not mistaken for one whose index went backwards.
//!
//! What the rule cannot do is left to the loop: a return does not prove a change
//! (timeout, idempotent write, unrelated churn), so compare content or per-object
//! modify indexes; and a server may answer a wait at once, so rate-limit the loop.

/// What to do after a blocking read returned: the outcome of [`next_index`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextIndex {
    /// Block on this index next (always ≥ 1). The answer may or may not carry a
    /// change: compare its content.
    Block(u64),
    /// The server's index went backwards: discard what was derived from earlier
    /// answers and relist with a non-blocking read (index 0).
    Relist,
}

impl NextIndex {
    /// The index to send with the next read: the blocking index, or 0 to relist.
    pub fn wait_index(self) -> u64 {
        match self {
            NextIndex::Block(index) => index,
            NextIndex::Relist => 0,
        }
    }

    /// Whether the server's index went backwards (the caller must relist).
    pub fn went_backwards(self) -> bool {
        matches!(self, NextIndex::Relist)
    }
}

/// The rule for one answer: `previous` is the index the read was sent with (0 for the
/// first read or a relist, i.e. the last [`NextIndex::wait_index`]), `returned` the
/// index the server answered with. Pure.
///
/// Because indexes below 1 count as 1, a drop from a real index 1 to 0 is not seen as
/// backwards; no Consul or Nomad state restores to "never written" from index 1, and
/// the next write moves the index on anyway.
pub fn next_index(previous: u64, returned: u64) -> NextIndex {
    let returned = returned.max(1);
    if returned < previous {
        NextIndex::Relist
    } else {
        NextIndex::Block(returned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_read_blocks_on_what_the_server_answered() {
        assert_eq!(next_index(0, 42), NextIndex::Block(42));
    }

    #[test]
    fn a_forward_index_is_blocked_on() {
        assert_eq!(next_index(42, 50), NextIndex::Block(50));
    }

    #[test]
    fn an_unchanged_index_is_kept_after_a_timeout_return() {
        assert_eq!(next_index(42, 42), NextIndex::Block(42));
        assert!(!next_index(42, 42).went_backwards());
    }

    #[test]
    fn a_backwards_index_resets_to_zero_and_relists() {
        let next = next_index(42, 7);
        assert_eq!(next, NextIndex::Relist);
        assert!(next.went_backwards());
        assert_eq!(next.wait_index(), 0);
        // the relist is a first read again: whatever it answers is blocked on
        assert_eq!(next_index(next.wait_index(), 7), NextIndex::Block(7));
    }

    #[test]
    fn index_zero_is_never_blocked_on() {
        // a fresh Nomad answers 0 to the first read...
        assert_eq!(next_index(0, 0), NextIndex::Block(1));
        // ...and keeps answering 0 to the wait on 1: not backwards, still 1
        assert_eq!(next_index(1, 0), NextIndex::Block(1));
        assert_eq!(next_index(1, 0).wait_index(), 1);
        // a real index below the blocked-on one is backwards even when it is 0
        assert_eq!(next_index(2, 0), NextIndex::Relist);
    }

    #[test]
    fn every_answer_yields_a_nonzero_wait_or_a_relist() {
        for previous in [0, 1, 2, 5, u64::MAX] {
            for returned in [0, 1, 2, 5, u64::MAX] {
                match next_index(previous, returned) {
                    NextIndex::Block(index) => {
                        assert!(index >= 1 && index >= previous, "{previous} {returned}");
                    }
                    NextIndex::Relist => assert!(returned < previous),
                }
            }
        }
    }
}
