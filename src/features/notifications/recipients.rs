//! Who an event is for: the people and organisations whose hats and scopes make it theirs, computed in the
//! transaction of the change like the consultees of a round. Uses the access rules of `crate::access` (hat
//! scopes, adm1 reach, who may decide on a proposal), never its own.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::kinds::Kind;
use crate::access::{Hat, HatGrant};
use crate::db::DbConn;
use crate::db::schema::{consultation_rounds, consultees, flags, hats, users};
use crate::domain::status::{AccountStatus, ConsulteeStatus};
use crate::features::proposals::repo::ProposalRow;

/// The recipients of one notification: users (feed, email) and organisations (webhooks), each with the reason
/// the message gives for why they got it.
#[derive(Debug, Default, Clone)]
pub struct Recipients {
    pub users: BTreeMap<String, String>,
    pub organizations: BTreeMap<String, String>,
}

impl Recipients {
    fn add_user(&mut self, user_id: &str, reason: &str) {
        self.users
            .entry(user_id.to_owned())
            .or_insert_with(|| reason.to_owned());
    }
    fn add_org(&mut self, org: &str, reason: &str) {
        self.organizations
            .entry(org.to_owned())
            .or_insert_with(|| reason.to_owned());
    }
    fn add_users(&mut self, holders: Vec<Holder>, reason: &str) {
        for h in holders {
            self.add_user(&h.user_id, reason);
        }
    }
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.organizations.is_empty()
    }
}

/// A user (not disabled) holding a hat valid now.
#[derive(Debug, Clone)]
pub struct Holder {
    pub user_id: String,
    pub organization_id: String,
    pub grant: HatGrant,
}

impl Holder {
    /// The organisation the hat acts for (its scope, else the holder's own), as `access::acting_organization`.
    fn acting_org(&self) -> &str {
        self.grant
            .scope_organization_id
            .as_deref()
            .unwrap_or(&self.organization_id)
    }
    fn belongs_to(&self, org: &str) -> bool {
        self.organization_id == org || self.grant.scope_organization_id.as_deref() == Some(org)
    }
}

type HolderRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    bool,
);

/// Users (not disabled) holding one of `wanted`, unrevoked and valid at `now`, by hat (one statement).
fn holders_of(
    conn: &mut DbConn,
    wanted: &[Hat],
    now: NaiveDateTime,
) -> QueryResult<HashMap<Hat, Vec<Holder>>> {
    let names: Vec<&str> = wanted.iter().map(|h| h.as_str()).collect();
    let rows: Vec<HolderRow> = hats::table
        .inner_join(users::table)
        .filter(hats::hat.eq_any(names))
        .filter(hats::revoked_at.is_null())
        // A locked account (too many failed sign-ins) is still someone to tell; a disabled one is not.
        .filter(users::status.ne(AccountStatus::Disabled.as_str()))
        .select((
            hats::id,
            hats::hat,
            hats::user_id,
            users::organization_id,
            hats::scope_organization_id,
            hats::scope_adm1,
            hats::valid_from,
            hats::valid_until,
            hats::acting,
        ))
        .load(conn)?;
    let mut by_hat: HashMap<Hat, Vec<Holder>> = wanted.iter().map(|h| (*h, Vec::new())).collect();
    for (
        id,
        hat,
        user_id,
        organization_id,
        scope_organization_id,
        scope_adm1,
        valid_from,
        valid_until,
        acting,
    ) in rows
    {
        if !(valid_from.is_none_or(|from| from <= now) && valid_until.is_none_or(|until| now < until)) {
            continue;
        }
        // The filter asked for these hats by name, so the name parses; a stored name no hat has fails the
        // query rather than dropping a recipient.
        let hat = Hat::from_str(&hat).map_err(|_| {
            diesel::result::Error::DeserializationError(format!("unknown hat `{hat}` in hats").into())
        })?;
        by_hat.entry(hat).or_default().push(Holder {
            user_id,
            organization_id,
            grant: HatGrant {
                id,
                hat,
                scope_organization_id,
                scope_adm1,
                valid_from,
                valid_until,
                acting,
            },
        });
    }
    Ok(by_hat)
}

/// The holders of hats, read once per recipients computation: the first read takes, in one statement, every
/// hat the kind tells ([`hats_told`]); a hat asked for that is not there is read then (one statement more,
/// never skipped).
struct Holders {
    now: NaiveDateTime,
    told: &'static [Hat],
    read: HashMap<Hat, Vec<Holder>>,
}

impl Holders {
    fn new(now: NaiveDateTime, told: &'static [Hat]) -> Self {
        Self {
            now,
            told,
            read: HashMap::new(),
        }
    }

    /// Users (not disabled) holding `hat`, unrevoked and valid now.
    fn of(&mut self, conn: &mut DbConn, hat: Hat) -> QueryResult<Vec<Holder>> {
        if !self.read.contains_key(&hat) {
            let mut wanted = vec![hat];
            for told in self.told {
                if !wanted.contains(told) && !self.read.contains_key(told) {
                    wanted.push(*told);
                }
            }
            self.read.extend(holders_of(conn, &wanted, self.now)?);
        }
        Ok(self.read.get(&hat).cloned().unwrap_or_default())
    }
}

/// The hats [`for_proposal`] asks about for `kind`, read together. Only a saving: a hat left out here is
/// still read when asked for.
fn hats_told(kind: Kind) -> &'static [Hat] {
    match kind {
        Kind::ConsultationRequested | Kind::ConsultationDeadlineSoon => &[Hat::Consultee],
        Kind::ConsultationLapsed => &[Hat::QipOfficer, Hat::Consultee],
        Kind::FlagRaised => &[Hat::QipOfficer, Hat::Hc, Hat::Submitter],
        Kind::FlagWithdrawn | Kind::FlagResolved | Kind::FlagOverridden => {
            &[Hat::QipOfficer, Hat::Submitter, Hat::Consultee]
        }
        // The step's hat is known once the steps are read.
        Kind::StepAwaitingDecision => &[],
        Kind::StepDecided
        | Kind::ProposalReturned
        | Kind::ProposalRejected
        | Kind::TranchePaid
        | Kind::ProposalApproved => &[Hat::QipOfficer, Hat::Submitter],
        Kind::TranchePayable => &[Hat::FinanceOfficer],
        Kind::ReportDue | Kind::ReportOverdue | Kind::ReportAccepted | Kind::ReportReturned => {
            &[Hat::Submitter]
        }
        Kind::ReportSubmitted => &[Hat::QipOfficer],
        Kind::ProposalCancelled | Kind::ProposalClosed => &[
            Hat::QipOfficer,
            Hat::Submitter,
            Hat::Consultee,
            Hat::FinanceOfficer,
        ],
        Kind::HatGrantPending => &[Hat::Admin],
    }
}

fn reaching(holders: Vec<Holder>, adm1: Option<&str>) -> Vec<Holder> {
    holders
        .into_iter()
        .filter(|h| crate::access::grants_reach_adm1(&[&h.grant], adm1))
        .collect()
}

/// People who act for `org` in `hat`.
fn acting_for(conn: &mut DbConn, book: &mut Holders, hat: Hat, org: &str) -> QueryResult<Vec<Holder>> {
    Ok(book
        .of(conn, hat)?
        .into_iter()
        .filter(|h| h.acting_org() == org)
        .collect())
}

/// The submitting unit: its submitters, and whoever drafted or submitted the proposal.
fn add_submitting_unit(
    conn: &mut DbConn,
    r: &mut Recipients,
    p: &ProposalRow,
    book: &mut Holders,
) -> QueryResult<()> {
    let reason = "your unit submitted this proposal";
    r.add_users(
        acting_for(conn, book, Hat::Submitter, &p.organization_id)?,
        reason,
    );
    r.add_user(&p.created_by, "you drafted this proposal");
    if let Some(by) = &p.submitted_by {
        r.add_user(by, "you submitted this proposal");
    }
    r.add_org(&p.organization_id, reason);
    Ok(())
}

fn add_secretariat(
    conn: &mut DbConn,
    r: &mut Recipients,
    p: &ProposalRow,
    book: &mut Holders,
) -> QueryResult<()> {
    let officers = reaching(book.of(conn, Hat::QipOfficer)?, p.adm1_pcode.as_deref());
    r.add_users(
        officers,
        "you are a QIP officer (the secretariat follows every proposal)",
    );
    Ok(())
}

/// Holders of `hat` who may act on `p`: their scope reaches its area and they are not of its organisation.
fn add_deciders(
    conn: &mut DbConn,
    r: &mut Recipients,
    hat: Hat,
    p: &ProposalRow,
    book: &mut Holders,
    reason: &str,
) -> QueryResult<()> {
    let list = reaching(book.of(conn, hat)?, p.adm1_pcode.as_deref())
        .into_iter()
        .filter(|h| {
            !h.belongs_to(&p.organization_id)
                && crate::access::may_decide_on(
                    &h.user_id,
                    &h.organization_id,
                    &p.organization_id,
                    &p.created_by,
                    p.submitted_by.as_deref(),
                )
        })
        .collect();
    r.add_users(list, reason);
    Ok(())
}

fn add_consulted_orgs(
    conn: &mut DbConn,
    r: &mut Recipients,
    orgs: &[String],
    book: &mut Holders,
    reason: &str,
) -> QueryResult<()> {
    for org in orgs {
        r.add_users(acting_for(conn, book, Hat::Consultee, org)?, reason);
        r.add_org(org, reason);
    }
    Ok(())
}

/// Organisations consulted on `proposal_id`, in any round.
fn consulted_orgs(conn: &mut DbConn, proposal_id: &str, only_pending: bool) -> QueryResult<Vec<String>> {
    let mut q = consultees::table
        .inner_join(consultation_rounds::table.on(consultation_rounds::id.eq(consultees::round_id)))
        .filter(consultation_rounds::proposal_id.eq(proposal_id))
        .select(consultees::organization_id)
        .distinct()
        .into_boxed();
    if only_pending {
        q = q
            .filter(consultees::status.eq(ConsulteeStatus::Pending.as_str()))
            .filter(consultation_rounds::closed_at.is_null());
    }
    q.load(conn)
}

/// What the recipients computation needs from the event besides the proposal.
#[derive(Debug, Default)]
pub struct EventFacts {
    /// Organisations named by the event (consultees asked; those who lapsed).
    pub organizations: Vec<String>,
    /// The flag an event is about.
    pub flag_id: Option<String>,
    /// Who caused the event (never told about their own act, except by the feed of others).
    pub actor_id: Option<String>,
}

/// The recipients of `kind` about `proposal`.
pub fn for_proposal(
    conn: &mut DbConn,
    kind: Kind,
    p: &ProposalRow,
    facts: &EventFacts,
    now: NaiveDateTime,
) -> QueryResult<Recipients> {
    let mut r = Recipients::default();
    let mut book = Holders::new(now, hats_told(kind));
    match kind {
        Kind::ConsultationRequested | Kind::ConsultationDeadlineSoon => {
            let orgs = if facts.organizations.is_empty() {
                consulted_orgs(conn, &p.id, true)?
            } else {
                facts.organizations.clone()
            };
            add_consulted_orgs(
                conn,
                &mut r,
                &orgs,
                &mut book,
                "your organisation is consulted on this proposal",
            )?;
        }
        Kind::ConsultationLapsed => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_consulted_orgs(
                conn,
                &mut r,
                &facts.organizations,
                &mut book,
                "your organisation did not answer before the deadline",
            )?;
        }
        Kind::FlagRaised => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_deciders(
                conn,
                &mut r,
                Hat::Hc,
                p,
                &mut book,
                "you judge flags as humanitarian coordinator",
            )?;
            add_submitting_unit(conn, &mut r, p, &mut book)?;
        }
        Kind::FlagWithdrawn | Kind::FlagResolved | Kind::FlagOverridden => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_submitting_unit(conn, &mut r, p, &mut book)?;
            if let Some(flag_id) = &facts.flag_id {
                let raised_by: Option<Option<String>> = flags::table
                    .find(flag_id)
                    .select(flags::organization_id)
                    .first(conn)
                    .optional()?;
                if let Some(Some(org)) = raised_by {
                    add_consulted_orgs(
                        conn,
                        &mut r,
                        &[org],
                        &mut book,
                        "your organisation raised this concern",
                    )?;
                }
            }
        }
        Kind::StepAwaitingDecision => {
            let steps = crate::features::approval::repo::steps_of(conn, &p.id)?;
            if let Some(step) = steps.iter().find(|s| {
                s.version_number == p.current_version
                    && s.status == crate::domain::status::StepStatus::Pending
            }) {
                // The step's hat was read as a `Hat` (an unknown stored hat fails `steps_of`): its deciders are
                // always told, never silently skipped.
                let hat = step.hat;
                add_deciders(
                    conn,
                    &mut r,
                    hat,
                    p,
                    &mut book,
                    &format!("you decide this step in the `{hat}` hat"),
                )?;
            }
        }
        Kind::StepDecided | Kind::ProposalReturned | Kind::ProposalRejected | Kind::TranchePaid => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_submitting_unit(conn, &mut r, p, &mut book)?;
        }
        Kind::ProposalApproved => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_submitting_unit(conn, &mut r, p, &mut book)?;
        }
        Kind::TranchePayable => {
            let finance = reaching(book.of(conn, Hat::FinanceOfficer)?, p.adm1_pcode.as_deref());
            r.add_users(finance, "you are a finance officer of this pool");
        }
        Kind::ReportDue | Kind::ReportOverdue | Kind::ReportAccepted | Kind::ReportReturned => {
            add_submitting_unit(conn, &mut r, p, &mut book)?;
        }
        Kind::ReportSubmitted => add_secretariat(conn, &mut r, p, &mut book)?,
        Kind::ProposalCancelled | Kind::ProposalClosed => {
            add_secretariat(conn, &mut r, p, &mut book)?;
            add_submitting_unit(conn, &mut r, p, &mut book)?;
            let orgs = consulted_orgs(conn, &p.id, false)?;
            add_consulted_orgs(
                conn,
                &mut r,
                &orgs,
                &mut book,
                "your organisation was consulted on this proposal",
            )?;
            let finance = reaching(book.of(conn, Hat::FinanceOfficer)?, p.adm1_pcode.as_deref());
            r.add_users(finance, "you are a finance officer of this pool");
        }
        Kind::HatGrantPending => {}
    }
    if let Some(actor) = &facts.actor_id {
        r.users.remove(actor);
    }
    Ok(r)
}

/// Administrators other than the one who asked: a pending privileged grant needs one of them.
pub fn second_administrators(
    conn: &mut DbConn,
    requested_by: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Recipients> {
    let mut r = Recipients::default();
    for h in Holders::new(now, &[]).of(conn, Hat::Admin)? {
        if Some(h.user_id.as_str()) != requested_by {
            r.add_user(
                &h.user_id,
                "you are an administrator; a second administrator must confirm this grant",
            );
        }
    }
    Ok(r)
}
