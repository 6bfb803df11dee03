//! What to do with a release an interrupted helm run left behind, before upgrading it.
//!
//! Pure: decided from `helm history` alone, so it is tested without a cluster. Only
//! correct while the caller holds the store's lease (no live helm process on it).

use super::{ReleaseStatus, Revision};

/// The repair a release needs before `helm upgrade --install` can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// Nothing: absent, deployed, failed, superseded or uninstalled releases can be
    /// upgraded (or installed) as they are.
    None,
    /// Uninstall first: an install that never finished (`pending-install`), an
    /// uninstall that never finished (`uninstalling`), or a pending upgrade with no
    /// revision to go back to.
    Uninstall,
    /// Roll back to this revision first: an upgrade or rollback that never finished.
    Rollback(u32),
}

/// Decides the repair from the release's history (any order).
pub(crate) fn plan(history: &[Revision]) -> Repair {
    let Some(last) = history.iter().max_by_key(|r| r.revision) else {
        return Repair::None;
    };
    match last.status {
        ReleaseStatus::PendingInstall | ReleaseStatus::Uninstalling => Repair::Uninstall,
        ReleaseStatus::PendingUpgrade | ReleaseStatus::PendingRollback => {
            let best = |status: ReleaseStatus| {
                history
                    .iter()
                    .filter(|r| r.revision < last.revision && r.status == status)
                    .map(|r| r.revision)
                    .max()
            };
            match best(ReleaseStatus::Deployed).or_else(|| best(ReleaseStatus::Superseded)) {
                Some(revision) => Repair::Rollback(revision),
                None => Repair::Uninstall,
            }
        }
        _ => Repair::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReleaseStatus::*;

    fn mk_history(statuses: &[ReleaseStatus]) -> Vec<Revision> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, status)| Revision {
                revision: u32::try_from(i + 1).unwrap_or(u32::MAX),
                updated: None,
                status: *status,
                chart: "probe-0.1.0".to_owned(),
                app_version: String::new(),
                description: String::new(),
            })
            .collect()
    }

    #[test]
    fn plans_the_repair_from_history() {
        let cases: &[(&[ReleaseStatus], Repair)] = &[
            (&[], Repair::None),
            (&[Deployed], Repair::None),
            (&[Failed], Repair::None),
            (&[Superseded, Failed], Repair::None),
            (&[Uninstalled], Repair::None),
            (&[PendingInstall], Repair::Uninstall),
            (&[Uninstalling], Repair::Uninstall),
            (&[Deployed, PendingUpgrade], Repair::Rollback(1)),
            (&[Superseded, Deployed, PendingUpgrade], Repair::Rollback(2)),
            (
                &[Superseded, Deployed, Failed, PendingUpgrade],
                Repair::Rollback(2),
            ),
            (
                &[Deployed, PendingUpgrade, PendingRollback],
                Repair::Rollback(1),
            ),
            (&[Superseded, Failed, PendingUpgrade], Repair::Rollback(1)),
            (&[Failed, PendingUpgrade], Repair::Uninstall),
            (&[PendingUpgrade], Repair::Uninstall),
        ];
        for (statuses, want) in cases {
            assert_eq!(plan(&mk_history(statuses)), *want, "{statuses:?}");
        }
    }

    #[test]
    fn order_of_the_history_does_not_matter() {
        let mut h = mk_history(&[Superseded, Deployed, PendingUpgrade]);
        h.reverse();
        assert_eq!(plan(&h), Repair::Rollback(2));
    }
}
