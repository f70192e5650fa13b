//! "My tasks": what waits for the caller across every hat they hold — consultations to answer, steps to
//! decide, flags on their proposals — overdue first, then by due date. A few indexed queries, not one per
//! proposal.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::access::{Actor, Hat};
use crate::db::DbConn;
use crate::db::schema::{consultation_rounds, consultees, flags, proposals};
use crate::error::AppResult;
use crate::features::approval::dto::Task;
use crate::features::approval::repo;
use crate::features::audit::now_micros;

struct Brief {
    reference: Option<String>,
    title: String,
    organization_id: String,
    adm1: Option<String>,
    created_by: String,
    submitted_by: Option<String>,
}

/// (id, reference, title, organization, adm1, created_by, submitted_by)
type BriefRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn proposal_briefs(conn: &mut DbConn, ids: &[String]) -> QueryResult<HashMap<String, Brief>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<BriefRow> = proposals::table
        .filter(proposals::id.eq_any(ids))
        .select((
            proposals::id,
            proposals::reference,
            proposals::title,
            proposals::organization_id,
            proposals::adm1_pcode,
            proposals::created_by,
            proposals::submitted_by,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, reference, title, organization_id, adm1, created_by, submitted_by)| {
                (
                    id,
                    Brief {
                        reference,
                        title,
                        organization_id,
                        adm1,
                        created_by,
                        submitted_by,
                    },
                )
            },
        )
        .collect())
}

pub fn my_tasks(conn: &mut DbConn, actor: &Actor) -> AppResult<Vec<Task>> {
    let now = now_micros();
    let held: Vec<Hat> = actor.grants.iter().map(|g| g.hat).collect();
    let org_of = |hat: Hat| {
        actor
            .grants
            .iter()
            .filter(|g| g.hat == hat)
            .find_map(|g| g.scope_organization_id.clone())
            .unwrap_or_else(|| actor.organization_id.clone())
    };
    let mut tasks = Vec::new();

    if held.contains(&Hat::Consultee) {
        let org = org_of(Hat::Consultee);
        let open: Vec<(String, chrono::NaiveDateTime)> = consultees::table
            .inner_join(consultation_rounds::table.on(consultation_rounds::id.eq(consultees::round_id)))
            .filter(consultees::organization_id.eq(&org))
            .filter(consultees::status.eq("pending"))
            .filter(consultation_rounds::closed_at.is_null())
            .select((consultation_rounds::proposal_id, consultation_rounds::deadline))
            .load(conn)?;
        let briefs = proposal_briefs(conn, &open.iter().map(|o| o.0.clone()).collect::<Vec<_>>())?;
        for (proposal_id, deadline) in open {
            let b = briefs.get(&proposal_id);
            tasks.push(Task {
                kind: "consultation_response".into(),
                hat: Hat::Consultee,
                reference: b.and_then(|b| b.reference.clone()),
                title: b.map(|b| b.title.clone()).unwrap_or_default(),
                due_at: Some(deadline.and_utc()),
                overdue: deadline < now,
                link: format!("/api/v1/proposals/{proposal_id}/consultation/responses"),
                proposal_id,
            });
        }
    }

    let decider_hats: Vec<String> = held
        .iter()
        .filter(|h| crate::domain::pool_policy::DECIDING_HATS.contains(h))
        .map(|h| h.as_str().to_owned())
        .collect();
    if !decider_hats.is_empty() {
        let steps = repo::open_steps_for_hats(conn, &decider_hats)?;
        let briefs = proposal_briefs(
            conn,
            &steps.iter().map(|s| s.proposal_id.clone()).collect::<Vec<_>>(),
        )?;
        for step in steps {
            let Some(b) = briefs.get(&step.proposal_id) else {
                continue;
            };
            let Ok(hat) = step.hat.parse::<Hat>() else {
                continue;
            };
            // Separation of duties and scope: only what this person may actually decide.
            let grants: Vec<_> = actor.grants.iter().filter(|g| g.hat == hat).collect();
            if !crate::access::may_decide_on(
                &actor.user_id,
                &actor.organization_id,
                &b.organization_id,
                &b.created_by,
                b.submitted_by.as_deref(),
            ) || !crate::access::grants_reach_adm1(&grants, b.adm1.as_deref())
            {
                continue;
            }
            tasks.push(Task {
                kind: "approval_step".into(),
                hat,
                proposal_id: step.proposal_id.clone(),
                reference: b.reference.clone(),
                title: b.title.clone(),
                due_at: step.due_at.map(|d| d.and_utc()),
                overdue: step.overdue || step.due_at.is_some_and(|d| d < now),
                link: format!(
                    "/api/v1/proposals/{}/approval/steps/{}/decision",
                    step.proposal_id, step.id
                ),
            });
        }
    }

    if held.contains(&Hat::Submitter) {
        let org = org_of(Hat::Submitter);
        let open: Vec<String> = flags::table
            .inner_join(proposals::table.on(proposals::id.eq(flags::proposal_id)))
            .filter(proposals::organization_id.eq(&org))
            .filter(flags::status.eq("open"))
            .select(flags::proposal_id)
            .distinct()
            .load(conn)?;
        let briefs = proposal_briefs(conn, &open)?;
        for proposal_id in open {
            let b = briefs.get(&proposal_id);
            tasks.push(Task {
                kind: "flag_on_my_proposal".into(),
                hat: Hat::Submitter,
                reference: b.and_then(|b| b.reference.clone()),
                title: b.map(|b| b.title.clone()).unwrap_or_default(),
                due_at: None,
                overdue: false,
                link: format!("/api/v1/proposals/{proposal_id}/consultation"),
                proposal_id,
            });
        }
    }

    tasks.extend(crate::features::implementation::service::tasks_for(
        conn, actor, now,
    )?);
    // Overdue first, then by due date (undated last).
    tasks.sort_by(|a, b| {
        b.overdue
            .cmp(&a.overdue)
            .then_with(|| match (a.due_at, b.due_at) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.proposal_id.cmp(&b.proposal_id),
            })
    });
    Ok(tasks)
}
