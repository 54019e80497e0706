//! Leader election over a `coordination.k8s.io/v1` Lease, as decisions of
//! what was seen and when: who may claim the Lease, and until when a leader
//! may act on its last renewal.
//!
//! As in client-go's leader election, a candidate never compares its clock
//! with the holder's: a Lease held by another replica counts as expired only
//! once its record has not changed for `leaseDurationSeconds` by the
//! candidate's own clock since the candidate first saw that record. A leader
//! acts only until `renew_deadline` after the start of its last successful
//! renewal, which is shorter than the lease duration, so it has stopped
//! writing before anyone may take over.

use std::time::{Duration, Instant};

/// How long a Lease is held without renewal, how long a leader acts on one
/// renewal, and how often the Lease is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    /// kube-controller-manager's defaults, with a retry period short
    /// enough that a released Lease is taken over within a second or two.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(1),
        }
    }
}

/// Timing that cannot keep one leader at a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error(
        "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease_duration:?}): a leader must stop acting before another replica may take over"
    )]
    DeadlineNotShorter {
        renew_deadline: Duration,
        lease_duration: Duration,
    },
    #[error(
        "the retry period ({retry_period:?}) must be shorter than the renew deadline ({renew_deadline:?}): a leader renews at least once before it has to stop"
    )]
    RetryNotShorter {
        retry_period: Duration,
        renew_deadline: Duration,
    },
    #[error("the lease duration must be a whole number of seconds of at least 1, not {0:?}")]
    LeaseNotWholeSeconds(Duration),
}

impl Timing {
    pub fn validate(self) -> Result<Timing, TimingError> {
        let Timing {
            lease_duration,
            renew_deadline,
            retry_period,
        } = self;
        if lease_duration.subsec_nanos() != 0 || lease_duration.is_zero() {
            return Err(TimingError::LeaseNotWholeSeconds(lease_duration));
        }
        if renew_deadline >= lease_duration {
            return Err(TimingError::DeadlineNotShorter {
                renew_deadline,
                lease_duration,
            });
        }
        if retry_period >= renew_deadline {
            return Err(TimingError::RetryNotShorter {
                retry_period,
                renew_deadline,
            });
        }
        Ok(self)
    }
}

/// What a Lease's spec says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `spec.holderIdentity`; empty or absent when released.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i32>,
    /// `spec.renewTime`, as written (compared, never read as a clock).
    pub renew_time: Option<String>,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

impl Record {
    fn held_by(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// A record as a candidate saw it: the record, and when this replica first
/// saw it in this exact form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub record: Record,
    pub since: Instant,
}

impl Observed {
    /// What is known after reading `record` at `now`: the time a record
    /// was first seen is kept while it stays the same.
    pub fn update(previous: Option<Observed>, record: Record, now: Instant) -> Observed {
        match previous {
            Some(previous) if previous.record == record => previous,
            _ => Observed { record, since: now },
        }
    }
}

/// What a replica does with the Lease now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the Lease as this replica's: create it, renew it, take over a
    /// released or expired one. `transitions` is the `leaseTransitions` to
    /// write; `acquired` says whether this replica becomes the holder now
    /// (a new `acquireTime`) or renews.
    Claim { transitions: i32, acquired: bool },
    /// Another replica holds the Lease: look again at this instant at the
    /// latest (it expires then, unless renewed).
    Wait { until: Instant },
}

/// What `identity` does, having seen `observed` (None: no Lease exists).
pub fn decide(identity: &str, observed: Option<&Observed>, now: Instant) -> Step {
    let Some(observed) = observed else {
        return Step::Claim {
            transitions: 0,
            acquired: true,
        };
    };
    let record = &observed.record;
    match record.held_by() {
        Some(holder) if holder == identity => Step::Claim {
            transitions: record.transitions,
            acquired: false,
        },
        Some(_) => {
            let seconds = u64::try_from(record.duration_seconds.unwrap_or(0).max(1)).unwrap_or(1);
            let until = observed.since + Duration::from_secs(seconds);
            if now >= until {
                Step::Claim {
                    transitions: record.transitions + 1,
                    acquired: true,
                }
            } else {
                Step::Wait { until }
            }
        }
        None => Step::Claim {
            transitions: record.transitions + 1,
            acquired: true,
        },
    }
}

/// Until when a leader may act on a renewal it began sending at `sent`.
pub fn leads_until(sent: Instant, timing: Timing) -> Instant {
    sent + timing.renew_deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str, renewed: &str) -> Record {
        Record {
            holder: Some(by.into()),
            duration_seconds: Some(15),
            renew_time: Some(renewed.into()),
            transitions: 2,
        }
    }

    #[test]
    fn no_lease_is_claimed_as_the_first_holder() {
        let now = Instant::now();
        assert_eq!(
            decide("a", None, now),
            Step::Claim {
                transitions: 0,
                acquired: true
            }
        );
    }

    #[test]
    fn the_holder_renews_without_a_transition() {
        let now = Instant::now();
        let seen = Observed {
            record: held("a", "t1"),
            since: now,
        };
        assert_eq!(
            decide("a", Some(&seen), now + Duration::from_secs(60)),
            Step::Claim {
                transitions: 2,
                acquired: false
            }
        );
    }

    #[test]
    fn another_holders_lease_expires_a_lease_duration_after_its_record_was_first_seen() {
        let start = Instant::now();
        let seen = Observed {
            record: held("b", "t1"),
            since: start,
        };
        let until = start + Duration::from_secs(15);
        assert_eq!(
            decide("a", Some(&seen), start + Duration::from_millis(14_999)),
            Step::Wait { until }
        );
        assert_eq!(
            decide("a", Some(&seen), until),
            Step::Claim {
                transitions: 3,
                acquired: true
            }
        );
    }

    #[test]
    fn a_renewal_seen_restarts_the_wait_whatever_the_clocks_say() {
        let start = Instant::now();
        let first = Observed::update(None, held("b", "t1"), start);
        // The same record read again keeps the instant it was first seen.
        let same = Observed::update(
            Some(first.clone()),
            held("b", "t1"),
            start + Duration::from_secs(10),
        );
        assert_eq!(same.since, start);
        // A renewal (a new renewTime, however far in the past it claims to
        // be) is a new record: the wait starts again from now.
        let renewed_at = start + Duration::from_secs(14);
        let renewed = Observed::update(Some(same), held("b", "t0"), renewed_at);
        assert_eq!(renewed.since, renewed_at);
        assert_eq!(
            decide("a", Some(&renewed), start + Duration::from_secs(16)),
            Step::Wait {
                until: renewed_at + Duration::from_secs(15)
            }
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let released = Observed {
            record: Record {
                holder: Some(String::new()),
                duration_seconds: Some(1),
                renew_time: Some("t9".into()),
                transitions: 4,
            },
            since: now,
        };
        assert_eq!(
            decide("a", Some(&released), now),
            Step::Claim {
                transitions: 5,
                acquired: true
            }
        );
    }

    #[test]
    fn a_leader_acts_until_the_renew_deadline_after_its_last_renewal_began() {
        let sent = Instant::now();
        let timing = Timing::default();
        assert_eq!(leads_until(sent, timing), sent + Duration::from_secs(10));
        // It stops acting before any other replica may take over: their wait
        // starts no earlier than the renewal was sent.
        assert!(leads_until(sent, timing) < sent + timing.lease_duration);
    }

    #[test]
    fn timing_that_allows_two_leaders_is_refused() {
        let secs = Duration::from_secs;
        assert_eq!(Timing::default().validate(), Ok(Timing::default()));
        let equal = Timing {
            lease_duration: secs(10),
            renew_deadline: secs(10),
            retry_period: secs(2),
        };
        assert_eq!(
            equal.validate().map_err(|e| e.to_string()),
            Err("the renew deadline (10s) must be shorter than the lease duration (10s): a leader must stop acting before another replica may take over".into())
        );
        let slow_retry = Timing {
            lease_duration: secs(15),
            renew_deadline: secs(10),
            retry_period: secs(10),
        };
        assert!(matches!(
            slow_retry.validate(),
            Err(TimingError::RetryNotShorter { .. })
        ));
        let fractional = Timing {
            lease_duration: Duration::from_millis(1500),
            renew_deadline: secs(1),
            retry_period: Duration::from_millis(200),
        };
        assert!(matches!(
            fractional.validate(),
            Err(TimingError::LeaseNotWholeSeconds(_))
        ));
    }
}
