//! A CronJob's rollout: once its job template carries the pin, it is
//! rolled out. The next Job it starts runs the new template, but how that
//! Job ends is the outcome of a run, not of the rollout (a failed nightly
//! batch does not undo a release).

use super::Rollout;

pub(super) fn rollout() -> Rollout {
    Rollout::Complete
}
