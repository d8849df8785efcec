//! Power loss (issue 13, "Tests that would catch the next such bug"): record
//! every file operation of a workload, build each disk state a power loss
//! after each operation can leave (unsynced writes lost, kept, torn at a
//! sector or left as zeros; directory changes since the last directory
//! fsync lost in order), recover each with the real start-up, and find
//! every acknowledged lease and nothing never written. kill -9 (`kill9`)
//! cannot catch a missing fsync: the page cache survives a killed process.
//! The model of the disk is in `sim`.

use std::collections::HashSet;

use crate::sim::{check_dir, drive, drive_with, simulate, workload, Kill, Scratch};

#[test]
fn a_power_loss_after_any_operation_keeps_every_acknowledged_lease() {
    let mut seen = HashSet::new();
    let mut total = 0;
    for kill in [Kill::AfterWrite, Kill::InWrite] {
        let dir = Scratch::new("powerloss");
        let steps = workload(kill);
        let run = drive(dir.path(), &steps, None);
        assert!(
            run.refusals.is_empty(),
            "{kill:?}: refused: {:?}",
            run.refusals
        );
        assert!(!run.writer_died, "{kill:?}: the writer died");
        assert!(
            run.unacknowledged.is_empty(),
            "{kill:?}: messages never acknowledged: {:?}",
            run.unacknowledged
        );
        // Every message but the one the process died writing.
        assert_eq!(run.lost.len(), 1, "{kill:?}");
        assert_eq!(run.acked, run.appends.len() - 1, "{kill:?}");
        check_dir(dir.path(), &run).unwrap_or_else(|e| panic!("{kill:?}: {e}"));
        let sim = simulate(&run, &mut seen);
        eprintln!(
            "{kill:?}: {} operations, {} crash points, {} distinct disk states recovered",
            run.log.ops().len(),
            sim.crash_points,
            sim.states
        );
        total += sim.states;
        assert!(
            sim.failures.is_empty(),
            "{kill:?}: {} states fail:\n  {}",
            sim.failures.len(),
            sim.failures.join("\n  ")
        );
    }
    // The model must have produced states to check (distinct across runs).
    assert!(total > 300, "only {total} disk states");
}

/// The simulation itself: a store that never synced (the same operations
/// with every fsync and fdatasync left out of the record) must be caught
/// losing acknowledged leases, though kill -9 would find nothing wrong.
#[test]
fn the_simulation_catches_a_store_that_does_not_sync() {
    let dir = Scratch::new("powerloss-nosync");
    let run = drive_with(dir.path(), &workload(Kill::AfterWrite), None, true);
    assert!(run.refusals.is_empty() && run.unacknowledged.is_empty());
    let sim = simulate(&run, &mut HashSet::new());
    assert!(
        sim.failures
            .iter()
            .any(|f| f.contains("acknowledged state")),
        "a store without fdatasync went unnoticed: {sim:?}"
    );
}
