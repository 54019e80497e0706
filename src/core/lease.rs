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
    #[error(
        "the lease duration ({lease_duration:?}) must exceed the renew deadline ({renew_deadline:?}) by at least the retry period ({retry_period:?}): a standby's look at the Lease may take that long"
    )]
    MarginTooShort {
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
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
        if lease_duration - renew_deadline < retry_period {
            return Err(TimingError::MarginTooShort {
                lease_duration,
                renew_deadline,
                retry_period,
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

/// The Lease as a replica saw it: its record (`None`: there was no Lease),
/// when this replica first saw it in this exact form, and who held the
/// Lease this replica saw before (a Lease deleted under its holder is not
/// free until that holder must have stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub record: Option<Record>,
    pub since: Instant,
    pub held_before: Option<String>,
}

impl Observed {
    /// What is known after reading `record` at `now` (the instant the
    /// answer arrived): the time a record was first seen is kept while it
    /// stays the same.
    pub fn update(previous: Option<Observed>, record: Option<Record>, now: Instant) -> Observed {
        match previous {
            Some(previous) if previous.record == record => previous,
            previous => Observed {
                held_before: previous.and_then(|p| match p.record {
                    Some(r) => r.held_by().map(str::to_owned),
                    None => p.held_before,
                }),
                record,
                since: now,
            },
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

/// What `identity` does, having seen `observed`. A Lease that was never
/// there is claimed at once, and so is one its holder released (it stopped
/// acting before it did); one deleted while another replica held it is
/// waited out for `lease_duration`, as that holder may still act until then.
pub fn decide(identity: &str, observed: &Observed, now: Instant, lease_duration: Duration) -> Step {
    let Some(record) = &observed.record else {
        return match observed.held_before.as_deref() {
            Some(holder) if holder != identity && now < observed.since + lease_duration => Step::Wait {
                until: observed.since + lease_duration,
            },
            _ => Step::Claim {
                transitions: 0,
                acquired: true,
            },
        };
    };
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

    const LEASE: Duration = Duration::from_secs(15);

    fn held(by: &str, renewed: &str) -> Option<Record> {
        Some(Record {
            holder: Some(by.into()),
            duration_seconds: Some(15),
            renew_time: Some(renewed.into()),
            transitions: 2,
        })
    }

    fn seen(record: Option<Record>, since: Instant) -> Observed {
        Observed::update(None, record, since)
    }

    #[test]
    fn a_lease_never_there_is_claimed_as_the_first_holder() {
        let now = Instant::now();
        assert_eq!(
            decide("a", &seen(None, now), now, LEASE),
            Step::Claim {
                transitions: 0,
                acquired: true
            }
        );
    }

    #[test]
    fn the_holder_renews_without_a_transition() {
        let now = Instant::now();
        assert_eq!(
            decide(
                "a",
                &seen(held("a", "t1"), now),
                now + Duration::from_secs(60),
                LEASE
            ),
            Step::Claim {
                transitions: 2,
                acquired: false
            }
        );
    }

    #[test]
    fn another_holders_lease_expires_a_lease_duration_after_its_record_was_first_seen() {
        let start = Instant::now();
        let observed = seen(held("b", "t1"), start);
        let until = start + Duration::from_secs(15);
        assert_eq!(
            decide("a", &observed, start + Duration::from_millis(14_999), LEASE),
            Step::Wait { until }
        );
        assert_eq!(
            decide("a", &observed, until, LEASE),
            Step::Claim {
                transitions: 3,
                acquired: true
            }
        );
    }

    #[test]
    fn a_renewal_seen_restarts_the_wait_whatever_the_clocks_say() {
        let start = Instant::now();
        let first = seen(held("b", "t1"), start);
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
            decide("a", &renewed, start + Duration::from_secs(16), LEASE),
            Step::Wait {
                until: renewed_at + Duration::from_secs(15)
            }
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let released = Some(Record {
            holder: Some(String::new()),
            duration_seconds: Some(1),
            renew_time: Some("t9".into()),
            transitions: 4,
        });
        let observed = Observed::update(Some(seen(held("b", "t8"), now)), released, now);
        assert_eq!(
            decide("a", &observed, now, LEASE),
            Step::Claim {
                transitions: 5,
                acquired: true
            }
        );
    }

    #[test]
    fn a_lease_deleted_under_another_holder_is_waited_out_for_a_lease_duration() {
        let start = Instant::now();
        let gone_at = start + Duration::from_secs(2);
        let gone = Observed::update(Some(seen(held("b", "t1"), start)), None, gone_at);
        assert_eq!(gone.held_before.as_deref(), Some("b"));
        assert_eq!(
            decide("a", &gone, gone_at + Duration::from_secs(14), LEASE),
            Step::Wait {
                until: gone_at + LEASE
            }
        );
        assert_eq!(
            decide("a", &gone, gone_at + LEASE, LEASE),
            Step::Claim {
                transitions: 0,
                acquired: true
            }
        );
        // Still missing at the next look: the wait keeps its start.
        let still = Observed::update(Some(gone), None, gone_at + Duration::from_secs(5));
        assert_eq!(still.since, gone_at);
        // Its own Lease deleted, a leader claims it again at once.
        let own = Observed::update(Some(seen(held("a", "t1"), start)), None, gone_at);
        assert_eq!(
            decide("a", &own, gone_at, LEASE),
            Step::Claim {
                transitions: 0,
                acquired: true
            }
        );
    }

    #[test]
    fn a_leader_acts_until_the_renew_deadline_after_its_last_renewal_began() {
        let sent = Instant::now();
        let timing = Timing::default();
        assert_eq!(leads_until(sent, timing), sent + Duration::from_secs(10));
        // A standby's wait starts when its read of the renewal answered,
        // after the renewal was sent; the leader stops a retry period or
        // more before that wait ends.
        assert!(leads_until(sent, timing) + timing.retry_period <= sent + timing.lease_duration);
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
        let thin_margin = Timing {
            lease_duration: secs(2),
            renew_deadline: Duration::from_millis(1900),
            retry_period: Duration::from_millis(1500),
        };
        assert!(matches!(
            thin_margin.validate(),
            Err(TimingError::MarginTooShort { .. })
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
