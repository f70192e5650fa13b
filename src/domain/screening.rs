//! Overlap screening against the 3W registry (DESIGN.md §3): an activity overlaps a proposal when it is not
//! closed, in the same sector, its dates overlap the proposal's, and it is in the same adm2 — or, when both
//! sides have coordinates, within the pool's radius. All the overlaps of one proposal fold into one bounded
//! finding: one advisory duplication flag and one consultee reason per organisation, however many activities
//! the registry holds.

use std::collections::BTreeMap;

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

/// Most overlapping activities a duplication finding lists by name; the total is always given.
pub const MAX_LISTED_OVERLAPS: usize = 20;

/// One registered activity a proposal overlaps.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlapMatch {
    pub activity_id: String,
    pub organization_id: String,
    pub title: String,
    pub basis: OverlapBasis,
}

impl OverlapMatch {
    fn distance(&self) -> f64 {
        match self.basis {
            OverlapBasis::SameAdm2 => 0.0,
            OverlapBasis::WithinRadius { distance_km } => distance_km,
        }
    }

    /// `3W activity “Latrines” in the same adm2` / `… 4.2 km away`.
    pub fn describe(&self) -> String {
        match self.basis {
            OverlapBasis::SameAdm2 => format!("3W activity “{}” in the same adm2", self.title),
            OverlapBasis::WithinRadius { distance_km } => {
                format!("3W activity “{}” {distance_km} km away", self.title)
            }
        }
    }
}

/// The overlaps of one organisation's activities, for its consultee reason.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationOverlap {
    pub count: usize,
    pub nearest: OverlapMatch,
}

impl OrganizationOverlap {
    pub fn describe(&self) -> String {
        match self.count {
            1 => self.nearest.describe(),
            n => format!(
                "{n} overlapping 3W activities, the nearest {}",
                self.nearest.describe()
            ),
        }
    }
}

/// Every overlap of one proposal, folded: what its single duplication flag says and lists.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicationFinding {
    /// Nearest first (same adm2, then by distance, then by id), at most `cap`.
    pub listed: Vec<OverlapMatch>,
    pub total: usize,
    /// Per organisation holding overlapping activities.
    pub by_organization: BTreeMap<String, OrganizationOverlap>,
}

impl DuplicationFinding {
    /// The one organisation behind every match, when there is just one (it may withdraw the flag).
    pub fn sole_organization(&self) -> Option<&str> {
        match self.by_organization.len() {
            1 => self.by_organization.keys().next().map(String::as_str),
            _ => None,
        }
    }

    /// The flag's text, shared with the submitting unit.
    pub fn description(&self) -> String {
        match (self.total, self.listed.first()) {
            (1, Some(only)) => format!("Possible duplication: {}.", only.describe()),
            (n, Some(nearest)) => format!(
                "Possible duplication: {n} overlapping 3W activities of {} organisation(s); the nearest is {}.",
                self.by_organization.len(),
                nearest.describe()
            ),
            (_, None) => "Possible duplication.".to_owned(),
        }
    }
}

/// Folds the overlaps of one proposal into one finding listing at most `cap` of them; `None` without any.
pub fn fold_overlaps(mut matches: Vec<OverlapMatch>, cap: usize) -> Option<DuplicationFinding> {
    if matches.is_empty() {
        return None;
    }
    matches.sort_by(|a, b| {
        a.distance()
            .total_cmp(&b.distance())
            .then_with(|| a.activity_id.cmp(&b.activity_id))
    });
    let mut by_organization: BTreeMap<String, OrganizationOverlap> = BTreeMap::new();
    for m in &matches {
        by_organization
            .entry(m.organization_id.clone())
            .and_modify(|o| o.count += 1)
            .or_insert_with(|| OrganizationOverlap {
                count: 1,
                nearest: m.clone(),
            });
    }
    let total = matches.len();
    matches.truncate(cap);
    Some(DuplicationFinding {
        listed: matches,
        total,
        by_organization,
    })
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

    fn found(id: &str, org: &str, basis: OverlapBasis) -> OverlapMatch {
        OverlapMatch {
            activity_id: id.into(),
            organization_id: org.into(),
            title: format!("Activity {id}"),
            basis,
        }
    }

    #[test]
    fn no_overlap_no_finding() {
        assert_eq!(fold_overlaps(Vec::new(), MAX_LISTED_OVERLAPS), None);
    }

    #[test]
    fn one_overlap_reads_as_before() {
        let f = fold_overlaps(vec![found("a1", "unicef", OverlapBasis::SameAdm2)], 20).unwrap();
        assert_eq!(f.total, 1);
        assert_eq!(f.sole_organization(), Some("unicef"));
        assert_eq!(
            f.description(),
            "Possible duplication: 3W activity “Activity a1” in the same adm2."
        );
        assert_eq!(
            f.by_organization["unicef"].describe(),
            "3W activity “Activity a1” in the same adm2"
        );
    }

    #[test]
    fn many_overlaps_fold_into_one_bounded_nearest_first_finding() {
        let mut matches: Vec<OverlapMatch> = (0..20_000)
            .map(|i| {
                found(
                    &format!("a{i:05}"),
                    if i % 2 == 0 { "unicef" } else { "nrc" },
                    OverlapBasis::WithinRadius {
                        distance_km: f64::from(i % 9) + 0.5,
                    },
                )
            })
            .collect();
        matches.push(found("z-same", "wfp", OverlapBasis::SameAdm2));
        let f = fold_overlaps(matches, MAX_LISTED_OVERLAPS).unwrap();
        assert_eq!(f.total, 20_001);
        assert_eq!(f.listed.len(), MAX_LISTED_OVERLAPS);
        assert_eq!(f.listed[0].activity_id, "z-same", "same adm2 comes first");
        assert!(
            f.listed.windows(2).all(|w| w[0].distance() <= w[1].distance()),
            "nearest first"
        );
        assert_eq!(f.sole_organization(), None);
        assert_eq!(f.by_organization.len(), 3);
        assert_eq!(f.by_organization["unicef"].count, 10_000);
        assert!(
            f.by_organization["unicef"]
                .describe()
                .starts_with("10000 overlapping 3W activities, the nearest")
        );
        assert!(
            f.description()
                .starts_with("Possible duplication: 20001 overlapping 3W activities of 3 organisation(s)")
        );
        assert!(f.description().len() < 500);
    }

    #[test]
    fn ties_are_ordered_by_id_so_the_listing_is_stable() {
        let f = fold_overlaps(
            vec![
                found("b", "o", OverlapBasis::SameAdm2),
                found("a", "o", OverlapBasis::SameAdm2),
                found("c", "o", OverlapBasis::SameAdm2),
            ],
            2,
        )
        .unwrap();
        let ids: Vec<&str> = f.listed.iter().map(|m| m.activity_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(f.total, 3);
    }
}
