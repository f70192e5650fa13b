//! `qip-pool demo seed`: a complete, clearly fictional demo mission (the "Republic of Xylonia"), built through
//! the same service functions the API uses, so every object is validated and audited like real data.

use serde_json::{Value, json};

use crate::access::{Actor, Hat, HatGrant, ResolvedHat};
use crate::config::DualControlSettings;
use crate::db::DbConn;
use crate::domain::ids::ProposalId;
use crate::error::{AppError, AppResult};
use crate::features::identity::dto::{
    GrantOutcome, NewHatGrant, NewOrganization, NewUser, OrganizationKind, SetupPasswordRequest,
};
use crate::features::identity::{AuthRuntime, repo as identity_repo, service as identity};
use crate::features::pools::dto::NewPool;
use crate::features::{pools, proposals, reference};
use crate::request_meta::RequestMeta;

/// Password of every demo account (printed by the command; demo databases only).
pub const DEMO_PASSWORD: &str = "xylonia-demo-2026";

/// Demo gazetteer: fictional P-codes of a fictional country.
pub const DEMO_GAZETTEER: &str = "ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN,LAT,LON\n\
XY01,North Xylonia (demo),XY0101,Kalma (demo),12.10,24.90\n\
XY01,North Xylonia (demo),XY0102,Tawila (demo),12.30,25.10\n\
XY02,South Xylonia (demo),XY0201,Nyala (demo),11.05,24.88\n\
XY02,South Xylonia (demo),XY0202,Gereida (demo),10.95,25.20\n";

/// Dual control during seeding: setup tokens are spent and privileged grants confirmed (from the console, as
/// the seeding operator) at once, so short lifetimes do.
const SEED_DUAL_CONTROL: DualControlSettings = DualControlSettings {
    grant_confirmation_ttl_hours: 1,
    setup_token_ttl_hours: 1,
};

/// The request facts of seeding steps done as a user (there is no request: the seeder's console).
fn seed_meta() -> RequestMeta {
    RequestMeta {
        request_id: "demo-seed".into(),
        client_addr: None,
    }
}

/// One demo login, as printed.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub username: String,
    pub hats: Vec<Hat>,
    pub organization: String,
}

fn actor_for(user_id: &str, username: &str, organization_id: &str, hat: Hat) -> Actor {
    let grant = HatGrant {
        id: format!("demo-{hat}"),
        hat,
        scope_organization_id: None,
        scope_adm1: None,
        valid_from: None,
        valid_until: None,
        acting: false,
    };
    Actor {
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        organization_id: organization_id.to_owned(),
        grants: vec![grant.clone()],
        acting_in: Some(ResolvedHat {
            hat,
            grants: vec![grant],
        }),
        request_id: "demo-seed".to_owned(),
        client_addr: None,
    }
}

fn proposal_body(pool_id: &str, title: &str, sector: &str, adm1: &str, adm2: &str, amount: &str) -> Value {
    json!({
        "pool_id": pool_id,
        "title": title,
        "summary": format!("{title} (demo data)"),
        "objectives": "Restore a basic service the community asked for",
        "confidence_building_purpose": "Build trust between the mission and the community",
        "sector_code": sector,
        "location": {"adm1_pcode": adm1, "adm2_pcode": adm2},
        "implementing_partner": {"kind": "local_authority", "name": "District council (demo)"},
        "beneficiaries": {"women": 120, "men": 110, "girls": 200, "boys": 190},
        "planned_start": "2027-02-01",
        "planned_end": "2027-05-31",
        "budget_lines": [
            {"description": "Materials", "category": "materials", "quantity": "1", "unit_cost": amount}
        ],
        "requested_amount": amount,
        "handover": {"local_authority": "District council (demo)", "maintenance": "Community committee"},
        "local_ownership": "Endorsed by the council and community leaders (demo)",
        "screening": {
            "civilian_actor_present": false,
            "unique_military_capability": "Engineering company with heavy equipment",
            "time_limited_with_handover": true,
            "assistance_type": "indirect",
            "humanitarian_access_risk": "Low; civilian contractor, no armed escort on site"
        }
    })
}

/// Seeds the demo mission on a database that has no demo data yet.
pub fn seed(conn: &mut DbConn, auth: &AuthRuntime) -> AppResult<Vec<DemoLogin>> {
    if identity_repo::list_organizations(conn, None, 10_000)?
        .iter()
        .any(|o| o.code == "BANBAT")
    {
        return Err(AppError::conflict(
            "demo data is present already; seed a fresh database",
        ));
    }
    let admin_id = match identity::needs_bootstrap(conn)? {
        true => identity::bootstrap_admin(conn, auth, "admin", DEMO_PASSWORD)
            .map_err(|e| AppError::conflict(e.to_string()))?,
        false => {
            return Err(AppError::conflict(
                "an administrator exists already; seed a fresh database",
            ));
        }
    };
    let mission_org = identity_repo::find_user(conn, &admin_id)?
        .map(|u| u.organization_id)
        .ok_or_else(|| AppError::internal("bootstrap admin vanished"))?;
    let admin = actor_for(&admin_id, "admin", &mission_org, Hat::Admin);

    let orgs: [(&str, &str, OrganizationKind); 8] = [
        (
            "BANBAT",
            "Demo Battalion 1 (demo)",
            OrganizationKind::MilitaryUnit,
        ),
        (
            "CIVAFF",
            "Civil Affairs Section (demo)",
            OrganizationKind::MissionSection,
        ),
        ("UNICEF", "UNICEF Xylonia (demo)", OrganizationKind::UnAgency),
        (
            "NRC",
            "Norwegian Refugee Council Xylonia (demo)",
            OrganizationKind::Ngo,
        ),
        ("OCHA", "OCHA Xylonia (demo)", OrganizationKind::Coordination),
        (
            "KALMA-DC",
            "Kalma District Council (demo)",
            OrganizationKind::LocalAuthority,
        ),
        ("DONOR-A", "Donor A (demo)", OrganizationKind::Contributor),
        (
            "HOO-N",
            "Field Office North (demo)",
            OrganizationKind::MissionOffice,
        ),
    ];
    let mut org_ids = std::collections::HashMap::new();
    org_ids.insert("MISSION", mission_org.clone());
    for (code, name, kind) in orgs {
        let org = identity::create_organization(
            conn,
            &admin,
            &NewOrganization {
                code: code.into(),
                name: name.into(),
                kind,
            },
        )?;
        org_ids.insert(code, org.id);
    }
    let org = |code: &str| org_ids.get(code).cloned().unwrap_or_default();

    let people: [(&str, &str, &[Hat], Option<&str>); 9] = [
        ("cimic", "BANBAT", &[Hat::Submitter], None),
        ("civaff", "CIVAFF", &[Hat::Submitter], None),
        ("qip.officer", "MISSION", &[Hat::QipOfficer], None),
        ("wash.unicef", "UNICEF", &[Hat::Consultee], None),
        ("protection.nrc", "NRC", &[Hat::Consultee], None),
        ("ocha", "OCHA", &[Hat::Consultee], None),
        ("dsrsg", "MISSION", &[Hat::Hc, Hat::Rc, Hat::Dsrsg], None),
        ("hoo.north", "HOO-N", &[Hat::HeadOfOffice], Some("XY01")),
        ("finance", "MISSION", &[Hat::FinanceOfficer], None),
    ];
    let mut logins = vec![DemoLogin {
        username: "admin".into(),
        hats: vec![Hat::Admin],
        organization: "MISSION".into(),
    }];
    let mut ids = std::collections::HashMap::new();
    let all_people =
        people
            .iter()
            .copied()
            .chain(std::iter::once(("auditor", "MISSION", &[Hat::Auditor][..], None)));
    for (username, org_code, hats, adm1) in all_people {
        // Through the same steps as a real account: the admin creates it and gets a setup token, the user
        // (here the seeder) chooses the password with it.
        let created = identity::create_user(
            conn,
            auth,
            &SEED_DUAL_CONTROL,
            &admin,
            &NewUser {
                username: username.into(),
                display_name: format!("{username} (demo)"),
                email: format!("{username}@demo.invalid"),
                organization_id: org(org_code),
            },
        )?;
        identity::setup_password(
            conn,
            auth,
            &SetupPasswordRequest {
                token: created.setup_token,
                password: DEMO_PASSWORD.into(),
            },
            &seed_meta(),
        )?;
        let user = created.user;
        for hat in hats {
            let outcome = identity::grant_hat(
                conn,
                &SEED_DUAL_CONTROL,
                &admin,
                &user.id,
                &NewHatGrant {
                    hat: *hat,
                    scope_organization_id: None,
                    scope_adm1: adm1.map(str::to_owned),
                    valid_from: None,
                    valid_until: None,
                    acting: false,
                },
            )?;
            // Privileged hats wait for a second administrator; the seeding operator is at the console.
            if let GrantOutcome::Pending(request) = outcome {
                identity::confirm_hat_grant_from_console(conn, &request.id, Some("demo-seed"))?;
            }
        }
        ids.insert(username, (user.id, org(org_code)));
        logins.push(DemoLogin {
            username: username.into(),
            hats: hats.to_vec(),
            organization: org_code.into(),
        });
    }
    let person = |name: &str, hat: Hat| {
        let (id, org) = ids.get(name).cloned().unwrap_or_default();
        actor_for(&id, name, &org, hat)
    };

    let qip = person("qip.officer", Hat::QipOfficer);
    // The built-in demo gazetteer is the service's own, a handful of rows: no import limit to apply.
    reference::service::import_areas(conn, &qip, DEMO_GAZETTEER.as_bytes(), usize::MAX)?;
    let pool = pools::service::create_pool(
        conn,
        &qip,
        &NewPool {
            code: "XYQ".into(),
            name: "Xylonia QIP pool (demo)".into(),
            currency: "USD".into(),
            funding_start: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            funding_end: chrono::NaiveDate::from_ymd_opt(2027, 12, 31).unwrap_or_default(),
            settings: None,
        },
    )?;

    use crate::features::consultation::{activities, dto as consultation_dto, service as consultation};
    for (org_code, sector, always) in [
        ("UNICEF", Some("WSH"), false),
        ("NRC", Some("PRO"), false),
        ("OCHA", None, true),
    ] {
        consultation::create_rule(
            conn,
            &qip,
            &consultation_dto::NewRule {
                organization_id: org(org_code),
                sector_code: sector.map(str::to_owned),
                adm1_pcode: None,
                always_consult: always,
            },
        )?;
    }
    activities::create_activity(
        conn,
        &person("wash.unicef", Hat::Consultee),
        &consultation_dto::ActivityInput {
            title: "School WASH rehabilitation (demo)".into(),
            sector_code: "WSH".into(),
            adm1_pcode: "XY01".into(),
            adm2_pcode: "XY0101".into(),
            lat: Some(12.12),
            lon: Some(24.91),
            start_date: chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default(),
            end_date: chrono::NaiveDate::from_ymd_opt(2027, 8, 31),
            status: Some(consultation_dto::ActivityStatus::Ongoing),
        },
    )?;
    let finance = person("finance", Hat::FinanceOfficer);
    let pool_ref = crate::features::ledger::service::PoolRef::load(conn, &pool.id.as_str().into())?;
    crate::db::write_tx(conn, |tx| {
        crate::features::ledger::service::contribute(
            tx,
            &finance.audit(),
            &pool_ref,
            &org("DONOR-A").into(),
            25_000_000, // 250,000.00 USD
            None,
            crate::features::ledger::service::PostingDetails {
                reference: Some("DEMO-GRANT-001".into()),
                memo: Some("Demo contribution".into()),
                ..Default::default()
            },
        )
    })?;

    let unit = person("cimic", Hat::Submitter);
    let to_map = |v: Value| match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let submit =
        |conn: &mut DbConn, title: &str, sector: &str, adm2: &str, amount: &str| -> AppResult<ProposalId> {
            let adm1 = if adm2.starts_with("XY01") { "XY01" } else { "XY02" };
            let draft = proposals::service::create_proposal(
                conn,
                &unit,
                to_map(proposal_body(&pool.id, title, sector, adm1, adm2, amount)),
            )?;
            let id = ProposalId::from(draft.id);
            proposals::service::submit_proposal(conn, &unit, &id, draft.version)?;
            Ok(id)
        };
    let version = |conn: &mut DbConn, id: &ProposalId| -> AppResult<i64> {
        Ok(proposals::service::get_proposal(conn, &qip, id)?.version)
    };
    let no_objection = consultation_dto::ResponseInput {
        kind: consultation_dto::ResponseKind::NoObjection,
        comment: None,
        flags: Vec::new(),
    };
    let consult_clear = |conn: &mut DbConn, id: &ProposalId| -> AppResult<()> {
        for who in ["ocha", "wash.unicef", "protection.nrc"] {
            let actor = person(who, Hat::Consultee);
            let c = consultation::get_consultation(conn, &actor, id)?;
            let asked = c.rounds.last().is_some_and(|r| {
                r.consultees.iter().any(|x| {
                    x.organization_id == actor.organization_id
                        && x.status == crate::domain::status::ConsulteeStatus::Pending
                })
            });
            if asked {
                consultation::respond(conn, &actor, id, &no_objection)?;
            }
        }
        Ok(())
    };
    use crate::features::approval::{dto as approval_dto, service as approval};
    let decide_all = |conn: &mut DbConn, id: &ProposalId, last: approval_dto::Decision| -> AppResult<()> {
        let mut first = true;
        loop {
            let a = approval::get_approval(conn, &qip, id)?;
            let Some(step) = a.steps.iter().find(|s| s.current).cloned() else {
                return Ok(());
            };
            let is_last = a
                .steps
                .iter()
                .filter(|s| s.status == crate::domain::status::StepStatus::Pending)
                .count()
                == 1;
            let decider = if step.hat == Hat::HeadOfOffice {
                person("hoo.north", Hat::HeadOfOffice)
            } else {
                person("dsrsg", step.hat)
            };
            let input = approval_dto::DecisionInput {
                decision: if is_last {
                    last
                } else {
                    approval_dto::Decision::Approve
                },
                comment: Some("Demo decision".into()),
                conditions: None,
                multi_hat_acknowledgement: (!first)
                    .then(|| "Deciding again, in another hat (demo)".to_owned()),
            };
            approval::decide(
                conn,
                &decider,
                id,
                &crate::domain::ids::StepId::from(step.id.as_str()),
                a.version,
                &input,
            )?;
            first = first && decider.username != "dsrsg";
            if is_last || input.decision != approval_dto::Decision::Approve {
                return Ok(());
            }
        }
    };
    use crate::features::implementation::{dto as impl_dto, service as implementation};
    let pay = |conn: &mut DbConn, id: &ProposalId, n: i32, amount: &str| -> AppResult<()> {
        let body =
            json!({"amount": amount, "paid_on": "2026-11-20", "payment_reference": format!("DEMO-PAY-{n}")});
        let path = format!("/api/v1/proposals/{id}/tranches/{n}/disbursements");
        let idem = crate::features::ledger::idempotency::IdempotentRequest::new(
            &finance.user_id,
            Some(&format!("demo-{id}-{n}")),
            "POST",
            &path,
            &body,
        )?;
        let input: impl_dto::NewDisbursement =
            serde_json::from_value(body).map_err(|e| AppError::internal(e.to_string()))?;
        implementation::disbursement_request(
            conn,
            chrono::Duration::days(7),
            &finance,
            id,
            n,
            &input,
            &idem,
        )?;
        Ok(())
    };
    let complete = |conn: &mut DbConn, id: &ProposalId| -> AppResult<()> {
        let report = implementation::submit_report(
            conn,
            &unit,
            id,
            &impl_dto::NewReport::Completion {
                narrative: Some("Works finished (demo)".into()),
                beneficiaries_reached: crate::domain::proposal::Beneficiaries {
                    women: 100,
                    men: 90,
                    girls: 180,
                    boys: 170,
                },
                handover: impl_dto::Handover {
                    local_authority: "District council (demo)".into(),
                    date: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default(),
                    maintenance: "Community committee".into(),
                },
                expenditure_to_date: "5000.00".into(),
            },
        )?;
        implementation::decide_report(
            conn,
            &qip,
            &crate::domain::ids::ReportId::from(report.id.as_str()),
            true,
            &impl_dto::ReportDecision::default(),
        )?;
        Ok(())
    };

    // One proposal in every state.
    proposals::service::create_proposal(
        conn,
        &unit,
        to_map(proposal_body(
            &pool.id,
            "Football pitch for Tawila youth",
            "QIP-CUL",
            "XY01",
            "XY0102",
            "4500.00",
        )),
    )?;
    submit(
        conn,
        "Borehole for Kalma primary school",
        "WSH",
        "XY0101",
        "12000.00",
    )?;
    submit(conn, "Roof for Nyala health post", "HEA", "XY0201", "28000.00")?;
    let flagged = submit(conn, "Water point at Kalma market", "WSH", "XY0101", "9000.00")?;
    consultation::respond(
        conn,
        &person("wash.unicef", Hat::Consultee),
        &flagged,
        &consultation_dto::ResponseInput {
            kind: consultation_dto::ResponseKind::Objection,
            comment: Some("Our borehole programme covers this site (demo)".into()),
            flags: vec![consultation_dto::FlagInput {
                category: consultation_dto::FlagCategory::Duplication,
                severity: consultation_dto::Severity::Blocking,
                description: "UNICEF drills here in January (demo)".into(),
                confidential_note: Some("Demo confidential note: seen only by humanitarian hats".into()),
            }],
        },
    )?;
    consult_clear(conn, &flagged)?;
    let review = submit(
        conn,
        "Solar lights for Gereida clinic",
        "HEA",
        "XY0202",
        "7000.00",
    )?;
    consult_clear(conn, &review)?;
    let approved = submit(conn, "Culvert on the Nyala road", "QIP-INF", "XY0201", "14000.00")?;
    consult_clear(conn, &approved)?;
    decide_all(conn, &approved, approval_dto::Decision::Approve)?;
    let implementing = submit(conn, "Classroom repairs in Tawila", "EDU", "XY0102", "10000.00")?;
    consult_clear(conn, &implementing)?;
    decide_all(conn, &implementing, approval_dto::Decision::Approve)?;
    pay(conn, &implementing, 1, "6000.00")?;
    let completed = submit(conn, "Market shade in Kalma", "QIP-LIV", "XY0101", "5000.00")?;
    consult_clear(conn, &completed)?;
    decide_all(conn, &completed, approval_dto::Decision::Approve)?;
    pay(conn, &completed, 1, "3000.00")?;
    complete(conn, &completed)?;
    let closed = submit(
        conn,
        "Youth centre paint and benches",
        "QIP-CUL",
        "XY0101",
        "5000.00",
    )?;
    consult_clear(conn, &closed)?;
    decide_all(conn, &closed, approval_dto::Decision::Approve)?;
    pay(conn, &closed, 1, "3000.00")?;
    complete(conn, &closed)?;
    pay(conn, &closed, 2, "2000.00")?;
    let v = version(conn, &closed)?;
    implementation::close(
        conn,
        &qip,
        &closed,
        v,
        &impl_dto::CloseRequest {
            evaluation: impl_dto::Evaluation {
                objectives_met: impl_dto::ObjectivesMet::Yes,
                confidence_building_effect: "Youth and the battalion now meet monthly (demo)".into(),
                lessons: "Involve the youth council from the start (demo)".into(),
            },
            waive_unpaid_tranches: None,
        },
    )?;
    let withdrawn = submit(conn, "Checkpoint shelter", "QIP-CSE", "XY0201", "3000.00")?;
    let v = version(conn, &withdrawn)?;
    proposals::service::withdraw_proposal(
        conn,
        &unit,
        &withdrawn,
        v,
        Some("Overtaken by the new road plan (demo)".into()),
    )?;
    let rejected = submit(conn, "Monument to the battalion", "QIP-CUL", "XY0202", "6000.00")?;
    consult_clear(conn, &rejected)?;
    decide_all(conn, &rejected, approval_dto::Decision::Reject)?;
    let cancelled = submit(conn, "Bridge railing in Gereida", "QIP-INF", "XY0202", "8000.00")?;
    consult_clear(conn, &cancelled)?;
    decide_all(conn, &cancelled, approval_dto::Decision::Approve)?;
    let v = version(conn, &cancelled)?;
    implementation::cancel(
        conn,
        &person("dsrsg", Hat::Dsrsg),
        &cancelled,
        v,
        "Site unsafe after clashes (demo)",
    )?;
    Ok(logins)
}
