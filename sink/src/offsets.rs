//! Each assigned partition's commit point and count (pure; the runtime stores what this
//! returns in the consumer).
//!
//! - The commit point is the lowest offset read whose record is not done yet (written or
//!   dead-lettered), or one past the highest read when none is pending.
//! - The count is the records of the partition written to Cassandra (not dead-lettered) below
//!   the commit point, since the sink began: the count committed with the offset the
//!   assignment started from, plus what this assignment has written below the commit point
//!   since. It is stored with each offset (as the commit's metadata), so whoever reads the
//!   partition next goes on from the commit, and a record read again after a crash is counted
//!   once, by whichever pod commits past it.
//! - Until the committed count is known (reading it failed at the assignment), the partition
//!   stores nothing: its records are read again rather than committed with a wrong count.

use std::collections::{BTreeMap, HashMap};

use tributary_api::sink::PartitionCount;

/// What became of a record: its row acknowledged by Cassandra, or the record acknowledged by
/// the dead-letter topic. Only a written record counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Written,
    DeadLettered,
}

#[derive(Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
    /// Assignments so far: a count read for an earlier assignment of a partition is not for
    /// the current one.
    assignments: u64,
}

/// An offset to store for a partition, with the partition's count below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub offset: i64,
    pub count: u64,
}

/// A partition whose committed count is not known yet, and the assignment it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unknown {
    pub partition: i32,
    pub assignment: u64,
}

struct PartitionState {
    assignment: u64,
    /// The count committed with the offset this assignment started from.
    base: Option<u64>,
    /// Records written since the assignment: below the commit point, and in all.
    written_below: u64,
    written: u64,
    /// Offsets read and not yet behind the commit point, each with its outcome once done.
    records: BTreeMap<i64, Option<Outcome>>,
    /// One past the highest offset read.
    next: i64,
    /// The commit point; `None` before the first record.
    stored: Option<i64>,
}

impl OffsetTracker {
    /// A partition assigned, with the count committed with its offset (`None`: not read).
    pub fn assign(&mut self, partition: i32, base: Option<u64>) {
        self.assignments += 1;
        self.partitions.insert(partition, PartitionState::new(self.assignments, base));
    }

    pub fn begin(&mut self, partition: i32, offset: i64) {
        let assignments = &mut self.assignments;
        let state = self.partitions.entry(partition).or_insert_with(|| {
            // Read without an assignment seen: its count is read like a failed one's.
            *assignments += 1;
            PartitionState::new(*assignments, None)
        });
        // A partition starts where its first record is: that is already its commit point.
        state.stored.get_or_insert(offset);
        state.records.insert(offset, None);
        state.next = state.next.max(offset + 1);
    }

    /// Marks a record done; returns what to store when the commit point moved (and the
    /// partition's count is known).
    pub fn done(&mut self, partition: i32, offset: i64, outcome: Outcome) -> Option<Store> {
        let state = self.partitions.get_mut(&partition)?;
        match state.records.get_mut(&offset) {
            Some(slot @ None) => *slot = Some(outcome),
            _ => return None, // revoked meanwhile: not ours to store any more
        }
        if outcome == Outcome::Written {
            state.written += 1;
        }
        while let Some(first) = state.records.first_entry() {
            match first.get() {
                None => break,
                Some(outcome) => {
                    state.written_below += u64::from(*outcome == Outcome::Written);
                    first.remove();
                }
            }
        }
        let commit = state.records.first_key_value().map_or(state.next, |(offset, _)| *offset);
        if state.stored.is_some_and(|stored| commit <= stored) {
            return None;
        }
        state.stored = Some(commit);
        state.store()
    }

    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// The partitions whose committed count is still to be read.
    pub fn unknown(&self) -> Vec<Unknown> {
        let mut unknown: Vec<Unknown> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.base.is_none())
            .map(|(p, s)| Unknown { partition: *p, assignment: s.assignment })
            .collect();
        unknown.sort_by_key(|u| u.partition);
        unknown
    }

    /// The committed count read late for `unknown`; returns what to store now that the
    /// partition's count is known. A count read for an earlier assignment is dropped.
    pub fn count_read(&mut self, unknown: Unknown, base: u64) -> Option<Store> {
        let state = self.partitions.get_mut(&unknown.partition)?;
        if state.assignment != unknown.assignment || state.base.is_some() {
            return None;
        }
        state.base = Some(base);
        state.store()
    }

    /// The count of each partition whose committed count is known, with everything this pod
    /// has written of it since (for the pod's report), by partition.
    pub fn counts(&self) -> Vec<PartitionCount> {
        let mut counts: Vec<PartitionCount> = self
            .partitions
            .iter()
            .filter_map(|(p, s)| {
                let records = s.base?.saturating_add(s.written);
                Some(PartitionCount { partition: *p, records_written: i64::try_from(records).unwrap_or(i64::MAX) })
            })
            .collect();
        counts.sort_by_key(|c| c.partition);
        counts
    }
}

impl PartitionState {
    fn new(assignment: u64, base: Option<u64>) -> Self {
        PartitionState {
            assignment,
            base,
            written_below: 0,
            written: 0,
            records: BTreeMap::new(),
            next: 0,
            stored: None,
        }
    }

    fn store(&self) -> Option<Store> {
        Some(Store { offset: self.stored?, count: self.base?.saturating_add(self.written_below) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{DeadLettered, Written};

    #[test]
    fn the_commit_point_never_passes_a_record_still_being_written() {
        let mut t = OffsetTracker::default();
        t.assign(0, Some(0));
        for o in 10..15 {
            t.begin(0, o);
        }
        let at = |offset| Some(Store { offset, count: offset as u64 - 10 });
        assert_eq!(t.done(0, 12, Written), None, "10 and 11 are still pending");
        assert_eq!(t.done(0, 10, Written), at(11), "10 done: commit point 11");
        assert_eq!(t.done(0, 11, Written), at(13), "11 done, 12 was done: commit point 13");
        assert_eq!(t.done(0, 14, Written), None);
        assert_eq!(t.done(0, 13, Written), at(15), "all done: one past the highest read");
        t.assign(1, Some(0));
        t.begin(1, 7);
        t.forget(1);
        assert_eq!(t.done(1, 7, Written), None, "a revoked partition is not stored");
    }

    #[test]
    fn the_count_stored_with_an_offset_is_what_was_written_below_it_from_the_committed_count() {
        let mut t = OffsetTracker::default();
        t.assign(3, Some(500));
        for o in 100..104 {
            t.begin(3, o);
        }
        // 101 and 103 are written first: they are counted in the report at once, and in what
        // is committed only once the commit point passes them.
        assert_eq!(t.done(3, 101, Written), None);
        assert_eq!(t.done(3, 103, Written), None);
        assert_eq!(t.counts(), [PartitionCount { partition: 3, records_written: 502 }]);
        // 100 is dead-lettered: the offset moves, the count does not (but 101's does).
        assert_eq!(t.done(3, 100, DeadLettered), Some(Store { offset: 102, count: 501 }));
        assert_eq!(t.done(3, 102, Written), Some(Store { offset: 104, count: 503 }));
        assert_eq!(t.counts(), [PartitionCount { partition: 3, records_written: 503 }]);
    }

    #[test]
    fn a_partition_whose_committed_count_is_unknown_stores_nothing_until_it_is_read() {
        let mut t = OffsetTracker::default();
        t.assign(0, None);
        t.assign(1, Some(0));
        t.begin(0, 40);
        t.begin(0, 41);
        assert_eq!(t.done(0, 40, Written), None, "no count, no commit");
        assert_eq!(t.counts(), [PartitionCount { partition: 1, records_written: 0 }], "nor a figure in the report");
        let [unknown] = t.unknown()[..] else { panic!("partition 0 is unknown: {:?}", t.unknown()) };
        assert_eq!(unknown.partition, 0);
        assert_eq!(t.count_read(unknown, 70), Some(Store { offset: 41, count: 71 }), "stored once read");
        assert_eq!(t.done(0, 41, Written), Some(Store { offset: 42, count: 72 }));
        assert!(t.unknown().is_empty());
    }

    #[test]
    fn a_count_read_for_an_earlier_assignment_is_dropped() {
        let mut t = OffsetTracker::default();
        t.assign(0, None);
        let stale = t.unknown()[0];
        // Revoked and assigned again meanwhile, again without its count.
        t.forget(0);
        t.assign(0, None);
        assert_eq!(t.count_read(stale, 10), None);
        assert_eq!(t.unknown().len(), 1, "the new assignment's count is still to be read");
        assert_eq!(t.count_read(t.unknown()[0], 20), None, "nothing read yet: nothing to store");
        assert_eq!(t.counts(), [PartitionCount { partition: 0, records_written: 20 }]);
    }
}
