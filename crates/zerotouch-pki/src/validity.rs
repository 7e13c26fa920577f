//! When a certificate is valid.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, Time};

use crate::PkiError;

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first second it is valid (Unix time).
    pub not_before_unix: i64,
    /// The last second it is valid (Unix time); `None`: it never expires (99991231235959Z).
    pub not_after_unix: Option<i64>,
}

impl Validity {
    /// From an hour ago (clock skew between issuer and verifier) for `years` years.
    pub fn years_from_now(years: u32) -> Self {
        let now = unix_now();
        Validity {
            not_before_unix: now - 3600,
            not_after_unix: Some(now + i64::from(years) * 365 * 24 * 3600),
        }
    }

    /// From an hour ago, never expiring (device certificates).
    pub fn forever() -> Self {
        Validity {
            not_before_unix: unix_now() - 3600,
            not_after_unix: None,
        }
    }

    /// A period that ended `ago` before now (tests of expiry handling; operators replaying
    /// an old set-up).
    pub fn expired(ago: Duration) -> Self {
        let end = unix_now() - i64::try_from(ago.as_secs()).unwrap_or(i64::MAX / 2);
        Validity {
            not_before_unix: end - 30 * 24 * 3600,
            not_after_unix: Some(end),
        }
    }

    pub(crate) fn not_before(&self) -> Result<OffsetDateTime, PkiError> {
        OffsetDateTime::from_unix_timestamp(self.not_before_unix).map_err(|_| PkiError::InvalidDate)
    }

    pub(crate) fn not_after(&self) -> Result<OffsetDateTime, PkiError> {
        match self.not_after_unix {
            Some(t) => OffsetDateTime::from_unix_timestamp(t).map_err(|_| PkiError::InvalidDate),
            // RFC 5280 section 4.1.2.5: "no well-defined expiration date".
            None => Date::from_calendar_date(9999, Month::December, 31)
                .and_then(|d| Ok(d.with_time(Time::from_hms(23, 59, 59)?)))
                .map(|dt| dt.assume_utc())
                .map_err(|_| PkiError::InvalidDate),
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}
