//! When editions go out: a cron expression (seconds first) read in the
//! edition's own IANA time zone.
//!
//! croner computes instants in the zone itself, so an 08:00 Europe/Berlin
//! edition is at 08:00 local time on both sides of a daylight-saving change.
//! (tokio-cron-scheduler's own time-zone jobs keep the offset they were
//! created with, which drifts by an hour at a change; the daemon therefore
//! asks this module for each next instant.)
//!
//! A *slot* is one scheduled instant. It names an issue: the CLI and the
//! daemon agree that "the current issue" of an edition is the one for its
//! most recent slot at or before now.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

impl Schedule {
    /// Six fields (`sec min hour day-of-month month day-of-week`) or seven
    /// (with year). When both day fields are restricted, both must match.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "has {fields} fields; tidings uses 6 (seconds first: \"0 0 8 * * Mon\") or 7 (with a year)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| format!("{e}"))?;
        // An expression that never fires again (Feb 30th, a past year) is an
        // error now, not a silent edition that never goes out.
        let probe = crate::clock::Clock::now(&crate::clock::SystemClock).with_timezone(&tz);
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err("never fires".to_string());
        }
        Ok(Schedule {
            expr: expr.to_string(),
            tz,
            cron,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The most recent slot at or before `now`.
    pub fn slot_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc).trunc_subsecs(0))
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc).trunc_subsecs(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).single().expect("valid time")
    }

    #[test]
    fn five_fields_are_refused_with_a_hint() {
        let err = Schedule::parse("0 8 * * Mon", Tz::UTC).expect_err("5 fields");
        assert!(err.contains("6"), "{err}");
    }

    #[test]
    fn slot_at_or_before_is_inclusive() {
        let s = Schedule::parse("0 0 8 * * Mon", Tz::UTC).expect("valid");
        // 2026-11-30 is a Monday.
        assert_eq!(
            s.slot_at_or_before(utc(2026, 11, 30, 8, 0)),
            Some(utc(2026, 11, 30, 8, 0))
        );
        assert_eq!(
            s.slot_at_or_before(utc(2026, 11, 30, 7, 59)),
            Some(utc(2026, 11, 23, 8, 0))
        );
        assert_eq!(s.next_after(utc(2026, 11, 30, 8, 0)), Some(utc(2026, 12, 7, 8, 0)));
        // A slot names an issue: it must not carry the sub-seconds of `now`.
        let now = utc(2026, 11, 30, 9, 0) + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(s.slot_at_or_before(now), Some(utc(2026, 11, 30, 8, 0)));
        assert_eq!(s.next_after(now), Some(utc(2026, 12, 7, 8, 0)));
    }

    #[test]
    fn local_time_holds_across_daylight_saving_changes() {
        let s = Schedule::parse("0 0 8 * * *", chrono_tz::Europe::Berlin).expect("valid");
        // Summer time ends 2026-10-25: 08:00 CEST is 06:00 UTC, 08:00 CET is 07:00 UTC.
        assert_eq!(s.next_after(utc(2026, 10, 24, 12, 0)), Some(utc(2026, 10, 25, 7, 0)));
        assert_eq!(s.next_after(utc(2026, 10, 23, 12, 0)), Some(utc(2026, 10, 24, 6, 0)));
        // Summer time starts 2026-03-29.
        assert_eq!(s.next_after(utc(2026, 3, 28, 12, 0)), Some(utc(2026, 3, 29, 6, 0)));
        assert_eq!(s.next_after(utc(2026, 3, 27, 12, 0)), Some(utc(2026, 3, 28, 7, 0)));
    }
}
