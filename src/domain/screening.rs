//! Overlap screening against the 3W registry (DESIGN.md §3): an activity overlaps a proposal when it is not
//! closed, in the same sector, its dates overlap the proposal's, and it is in the same adm2 — or, when both
//! sides have coordinates, within the pool's radius.

use chrono::NaiveDate;
use serde::Serialize;

/// What screening needs to know about a registered activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityFootprint {
    pub id: String,
    pub organization_id: String,
    pub sector_code: String,
    pub adm2_pcode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub start: NaiveDate,
    /// Open-ended when absent.
    pub end: Option<NaiveDate>,
    pub closed: bool,
}

/// What screening needs to know about a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalFootprint {
    pub sector_code: String,
    pub adm2_pcode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Why an activity overlaps.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum OverlapBasis {
    SameAdm2,
    WithinRadius { distance_km: f64 },
}

/// Great-circle distance in kilometres (haversine, mean Earth radius).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6_371.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

/// Whether (and why) `activity` overlaps `proposal`.
pub fn overlap(
    proposal: &ProposalFootprint,
    activity: &ActivityFootprint,
    radius_km: u32,
) -> Option<OverlapBasis> {
    if activity.closed || activity.sector_code != proposal.sector_code {
        return None;
    }
    let dates_overlap =
        activity.start <= proposal.end && activity.end.is_none_or(|end| end >= proposal.start);
    if !dates_overlap {
        return None;
    }
    if activity.adm2_pcode == proposal.adm2_pcode {
        return Some(OverlapBasis::SameAdm2);
    }
    match (proposal.lat, proposal.lon, activity.lat, activity.lon) {
        (Some(plat), Some(plon), Some(alat), Some(alon)) => {
            let d = distance_km(plat, plon, alat, alon);
            (d <= f64::from(radius_km)).then(|| OverlapBasis::WithinRadius {
                distance_km: (d * 10.0).round() / 10.0,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, m, d).unwrap_or_default()
    }

    fn proposal() -> ProposalFootprint {
        ProposalFootprint {
            sector_code: "WSH".into(),
            adm2_pcode: "XY0101".into(),
            lat: Some(12.10),
            lon: Some(24.90),
            start: day(3, 1),
            end: day(6, 30),
        }
    }

    fn activity() -> ActivityFootprint {
        ActivityFootprint {
            id: "a1".into(),
            organization_id: "unicef".into(),
            sector_code: "WSH".into(),
            adm2_pcode: "XY0101".into(),
            lat: None,
            lon: None,
            start: day(1, 1),
            end: Some(day(12, 31)),
            closed: false,
        }
    }

    #[test]
    fn table_of_overlap_cases() {
        let p = proposal();
        struct Case {
            name: &'static str,
            change: fn(&mut ActivityFootprint),
            expect: bool,
        }
        let cases = [
            Case {
                name: "same sector, same adm2, overlapping dates",
                change: |_| {},
                expect: true,
            },
            Case {
                name: "same adm2, different sector",
                change: |a| a.sector_code = "EDU".into(),
                expect: false,
            },
            Case {
                name: "same sector, adjacent adm2 within radius",
                change: |a| {
                    a.adm2_pcode = "XY0102".into();
                    a.lat = Some(12.15);
                    a.lon = Some(24.95);
                },
                expect: true,
            },
            Case {
                name: "same sector, other adm2 beyond radius",
                change: |a| {
                    a.adm2_pcode = "XY0102".into();
                    a.lat = Some(13.10);
                    a.lon = Some(24.90);
                },
                expect: false,
            },
            Case {
                name: "other adm2, activity without coordinates",
                change: |a| a.adm2_pcode = "XY0102".into(),
                expect: false,
            },
            Case {
                name: "dates not overlapping (ended before)",
                change: |a| a.end = Some(NaiveDate::from_ymd_opt(2027, 2, 28).unwrap_or_default()),
                expect: false,
            },
            Case {
                name: "dates not overlapping (starts after)",
                change: |a| a.start = NaiveDate::from_ymd_opt(2027, 7, 1).unwrap_or_default(),
                expect: false,
            },
            Case {
                name: "open-ended activity",
                change: |a| a.end = None,
                expect: true,
            },
            Case {
                name: "closed activity",
                change: |a| a.closed = true,
                expect: false,
            },
            Case {
                name: "touching on the last day",
                change: |a| a.start = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap_or_default(),
                expect: true,
            },
        ];
        for case in cases {
            let mut a = activity();
            (case.change)(&mut a);
            assert_eq!(overlap(&p, &a, 10).is_some(), case.expect, "{}", case.name);
        }
    }

    #[test]
    fn distance_is_plausible() {
        // One degree of latitude is about 111 km.
        let d = distance_km(12.0, 25.0, 13.0, 25.0);
        assert!((110.0..112.5).contains(&d), "{d}");
        assert!(distance_km(12.1, 24.9, 12.1, 24.9) < 1e-9);
    }
}
