//! The policy table: which hats permit each action, and which action each route needs. A route with no entry
//! here is unreachable (the authorization middleware refuses it), so adding a route means adding its line.

use super::Hat;

/// Things a caller can do. Grouped by feature; later features add theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    OrganizationCreate,
    OrganizationRead,
    UserCreate,
    UserRead,
    UserDisable,
    UserEnable,
    UserResetPassword,
    HatRead,
    HatGrant,
    HatRevoke,
    HatGrantRequestRead,
    HatGrantConfirm,
    HatGrantRefuse,
    AuditRead,
    AuditVerify,
    AuditCheckpoint,
    AreaImport,
    ReferenceRead,
    PoolCreate,
    PoolUpdate,
    PoolRead,
    ProposalCreate,
    ProposalRead,
    ProposalEdit,
    ProposalSubmit,
    ProposalWithdraw,
    ProposalRevise,
    Contribute,
    LedgerRead,
    Reverse,
    LedgerCheck,
    ActivityWrite,
    ActivityImport,
    ActivityRead,
    RuleManage,
    RuleRead,
    ConsultationRead,
    ConsultationRespond,
    ConsulteeAdd,
    FlagWithdraw,
    FlagResolve,
    FlagOverride,
    ApprovalRead,
    ApprovalDecide,
    TurnaroundRead,
    Disburse,
    Refund,
    ReportSubmit,
    ReportDecide,
    ProposalCancel,
    ProposalClose,
    IatiExport,
    ExportRead,
    PoolReportRead,
    OrganizationWebhookManage,
}

use Action::*;
use Hat::*;

const EVERY_HAT: &[Hat] = &Hat::ALL;
/// Everyone who works with proposals and money; administrators manage people, never projects or money.
const PROGRAMME_HATS: &[Hat] = &[
    Submitter,
    QipOfficer,
    Consultee,
    Hc,
    Rc,
    Dsrsg,
    HeadOfOffice,
    FinanceOfficer,
    Auditor,
];

/// `(action, hats that permit it)`. The one table of who may do what.
pub const POLICY: &[(Action, &[Hat])] = &[
    (OrganizationCreate, &[Admin]),
    (OrganizationRead, EVERY_HAT),
    (UserCreate, &[Admin]),
    (UserRead, &[Admin, Auditor]),
    (UserDisable, &[Admin]),
    (UserEnable, &[Admin]),
    (UserResetPassword, &[Admin]),
    (HatRead, &[Admin, Auditor]),
    (HatGrant, &[Admin]),
    (HatRevoke, &[Admin]),
    (HatGrantRequestRead, &[Admin, Auditor]),
    (HatGrantConfirm, &[Admin]),
    (HatGrantRefuse, &[Admin]),
    (AuditRead, &[Auditor, Admin]),
    (AuditVerify, &[Auditor, Admin]),
    (AuditCheckpoint, &[Auditor, Admin]),
    (AreaImport, &[QipOfficer]),
    (ReferenceRead, PROGRAMME_HATS),
    (PoolCreate, &[QipOfficer]),
    (PoolUpdate, &[QipOfficer]),
    (PoolRead, PROGRAMME_HATS),
    (ProposalCreate, &[Submitter]),
    (ProposalRead, PROGRAMME_HATS),
    (ProposalEdit, &[Submitter]),
    (ProposalSubmit, &[Submitter]),
    (ProposalWithdraw, &[Submitter]),
    (ProposalRevise, &[Submitter]),
    (Contribute, &[FinanceOfficer]),
    (
        LedgerRead,
        &[QipOfficer, Hc, Rc, Dsrsg, HeadOfOffice, FinanceOfficer, Auditor],
    ),
    (Reverse, &[FinanceOfficer]),
    (LedgerCheck, &[Auditor, FinanceOfficer]),
    (ActivityWrite, &[Consultee]),
    (ActivityImport, &[Consultee, QipOfficer]),
    (ActivityRead, PROGRAMME_HATS),
    (RuleManage, &[QipOfficer]),
    (RuleRead, PROGRAMME_HATS),
    (ConsultationRead, PROGRAMME_HATS),
    (ConsultationRespond, &[Consultee]),
    (ConsulteeAdd, &[QipOfficer]),
    (FlagWithdraw, &[Consultee]),
    (FlagResolve, &[Consultee]),
    (FlagOverride, &[Hc]),
    (ApprovalRead, PROGRAMME_HATS),
    (ApprovalDecide, &[Hc, Rc, HeadOfOffice, Dsrsg]),
    (
        TurnaroundRead,
        &[QipOfficer, Hc, Rc, Dsrsg, HeadOfOffice, Auditor],
    ),
    (Disburse, &[FinanceOfficer]),
    (Refund, &[FinanceOfficer]),
    (ReportSubmit, &[Submitter]),
    (ReportDecide, &[QipOfficer]),
    (ProposalCancel, &[Dsrsg]),
    (ProposalClose, &[QipOfficer]),
    // IATI is publishable data (no confidential notes, flag texts or names): everyone in the programme.
    (IatiExport, PROGRAMME_HATS),
    // Row-level exports and the report carry every project's money: those who read the ledger.
    (
        ExportRead,
        &[QipOfficer, Hc, Rc, Dsrsg, HeadOfOffice, FinanceOfficer, Auditor],
    ),
    (
        PoolReportRead,
        &[QipOfficer, Hc, Rc, Dsrsg, HeadOfOffice, FinanceOfficer, Auditor],
    ),
    // An organisation's focal point manages its webhooks (object rule in notifications::service); admins any.
    (
        OrganizationWebhookManage,
        &[Admin, Consultee, Submitter, QipOfficer],
    ),
];

impl Action {
    /// Hats that permit this action (empty if the table has no line for it: nobody may).
    pub fn permitted_hats(self) -> &'static [Hat] {
        POLICY
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, hats)| *hats)
            .unwrap_or(&[])
    }

    pub fn permits(self, hat: Hat) -> bool {
        self.permitted_hats().contains(&hat)
    }

    /// Actions that only read. A read is served when any held hat permits it, without `Acting-Hat`
    /// (`resolve::resolve_hat` picks the hat); only writes ask which hat the caller acts in.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            OrganizationRead
                | UserRead
                | HatRead
                | HatGrantRequestRead
                | AuditRead
                | AuditVerify
                | AuditCheckpoint
                | ReferenceRead
                | PoolRead
                | ProposalRead
                | LedgerRead
                | LedgerCheck
                | ActivityRead
                | RuleRead
                | ConsultationRead
                | ApprovalRead
                | TurnaroundRead
                | IatiExport
                | ExportRead
                | PoolReportRead
        )
    }
}

/// What a route needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone, signed in or not (health probes, login).
    Public,
    /// Any signed-in, active user, whatever hats they hold (`/me`).
    Authenticated,
    /// A signed-in user acting in a hat that permits the action.
    Action(Action),
}

/// `(method, route template as in the OpenAPI document, requirement)`.
pub const ROUTES: &[(&str, &str, Requirement)] = &[
    ("GET", "/healthz", Requirement::Public),
    ("GET", "/readyz", Requirement::Public),
    ("GET", "/metrics", Requirement::Public),
    ("GET", "/problems/{slug}", Requirement::Public),
    ("GET", "/api/v1/openapi.json", Requirement::Public),
    ("POST", "/api/v1/auth/login", Requirement::Public),
    ("POST", "/api/v1/auth/refresh", Requirement::Public),
    ("POST", "/api/v1/auth/logout", Requirement::Public),
    ("POST", "/api/v1/auth/setup-password", Requirement::Public),
    ("GET", "/api/v1/me", Requirement::Authenticated),
    (
        "POST",
        "/api/v1/organizations",
        Requirement::Action(OrganizationCreate),
    ),
    (
        "GET",
        "/api/v1/organizations",
        Requirement::Action(OrganizationRead),
    ),
    (
        "GET",
        "/api/v1/organizations/{id}",
        Requirement::Action(OrganizationRead),
    ),
    ("POST", "/api/v1/users", Requirement::Action(UserCreate)),
    ("GET", "/api/v1/users", Requirement::Action(UserRead)),
    ("GET", "/api/v1/users/{id}", Requirement::Action(UserRead)),
    (
        "POST",
        "/api/v1/users/{id}/disable",
        Requirement::Action(UserDisable),
    ),
    (
        "POST",
        "/api/v1/users/{id}/enable",
        Requirement::Action(UserEnable),
    ),
    (
        "POST",
        "/api/v1/users/{id}/reset-password",
        Requirement::Action(UserResetPassword),
    ),
    ("GET", "/api/v1/users/{id}/hats", Requirement::Action(HatRead)),
    ("POST", "/api/v1/users/{id}/hats", Requirement::Action(HatGrant)),
    (
        "DELETE",
        "/api/v1/users/{id}/hats/{hat_id}",
        Requirement::Action(HatRevoke),
    ),
    (
        "GET",
        "/api/v1/hat-grant-requests",
        Requirement::Action(HatGrantRequestRead),
    ),
    (
        "GET",
        "/api/v1/hat-grant-requests/{id}",
        Requirement::Action(HatGrantRequestRead),
    ),
    (
        "POST",
        "/api/v1/hat-grant-requests/{id}/confirm",
        Requirement::Action(HatGrantConfirm),
    ),
    (
        "POST",
        "/api/v1/hat-grant-requests/{id}/refuse",
        Requirement::Action(HatGrantRefuse),
    ),
    ("GET", "/api/v1/audit/events", Requirement::Action(AuditRead)),
    ("GET", "/api/v1/audit/verify", Requirement::Action(AuditVerify)),
    (
        "GET",
        "/api/v1/audit/checkpoint",
        Requirement::Action(AuditCheckpoint),
    ),
    ("POST", "/api/v1/areas/import", Requirement::Action(AreaImport)),
    ("GET", "/api/v1/areas", Requirement::Action(ReferenceRead)),
    ("GET", "/api/v1/sectors", Requirement::Action(ReferenceRead)),
    ("POST", "/api/v1/pools", Requirement::Action(PoolCreate)),
    ("GET", "/api/v1/pools", Requirement::Action(PoolRead)),
    ("GET", "/api/v1/pools/{id}", Requirement::Action(PoolRead)),
    ("PATCH", "/api/v1/pools/{id}", Requirement::Action(PoolUpdate)),
    ("POST", "/api/v1/proposals", Requirement::Action(ProposalCreate)),
    ("GET", "/api/v1/proposals", Requirement::Action(ProposalRead)),
    ("GET", "/api/v1/proposals/{id}", Requirement::Action(ProposalRead)),
    (
        "PATCH",
        "/api/v1/proposals/{id}",
        Requirement::Action(ProposalEdit),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/versions",
        Requirement::Action(ProposalRead),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/versions/{n}",
        Requirement::Action(ProposalRead),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/submit",
        Requirement::Action(ProposalSubmit),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/withdraw",
        Requirement::Action(ProposalWithdraw),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/revise",
        Requirement::Action(ProposalRevise),
    ),
    (
        "POST",
        "/api/v1/pools/{id}/contributions",
        Requirement::Action(Contribute),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/transactions",
        Requirement::Action(LedgerRead),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/statement",
        Requirement::Action(LedgerRead),
    ),
    (
        "GET",
        "/api/v1/transactions/{id}",
        Requirement::Action(LedgerRead),
    ),
    (
        "POST",
        "/api/v1/transactions/{id}/reverse",
        Requirement::Action(Reverse),
    ),
    ("GET", "/api/v1/ledger/check", Requirement::Action(LedgerCheck)),
    ("POST", "/api/v1/activities", Requirement::Action(ActivityWrite)),
    ("GET", "/api/v1/activities", Requirement::Action(ActivityRead)),
    (
        "GET",
        "/api/v1/activities/{id}",
        Requirement::Action(ActivityRead),
    ),
    (
        "PATCH",
        "/api/v1/activities/{id}",
        Requirement::Action(ActivityWrite),
    ),
    (
        "POST",
        "/api/v1/activities/{id}/close",
        Requirement::Action(ActivityWrite),
    ),
    (
        "POST",
        "/api/v1/activities/import",
        Requirement::Action(ActivityImport),
    ),
    (
        "POST",
        "/api/v1/consultation-rules",
        Requirement::Action(RuleManage),
    ),
    ("GET", "/api/v1/consultation-rules", Requirement::Action(RuleRead)),
    (
        "DELETE",
        "/api/v1/consultation-rules/{id}",
        Requirement::Action(RuleManage),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/consultation",
        Requirement::Action(ConsultationRead),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/consultation/responses",
        Requirement::Action(ConsultationRespond),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/consultation/consultees",
        Requirement::Action(ConsulteeAdd),
    ),
    (
        "POST",
        "/api/v1/flags/{id}/withdraw",
        Requirement::Action(FlagWithdraw),
    ),
    (
        "POST",
        "/api/v1/flags/{id}/resolve",
        Requirement::Action(FlagResolve),
    ),
    (
        "POST",
        "/api/v1/flags/{id}/override",
        Requirement::Action(FlagOverride),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/approval",
        Requirement::Action(ApprovalRead),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/approval/steps/{step_id}/decision",
        Requirement::Action(ApprovalDecide),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/brief",
        Requirement::Action(ApprovalRead),
    ),
    ("GET", "/api/v1/me/tasks", Requirement::Authenticated),
    (
        "GET",
        "/api/v1/pools/{id}/turnaround",
        Requirement::Action(TurnaroundRead),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/tranches",
        Requirement::Action(ProposalRead),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/tranches/{n}/disbursements",
        Requirement::Action(Disburse),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/refunds",
        Requirement::Action(Refund),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/reports",
        Requirement::Action(ReportSubmit),
    ),
    (
        "GET",
        "/api/v1/proposals/{id}/reports",
        Requirement::Action(ProposalRead),
    ),
    (
        "POST",
        "/api/v1/reports/{id}/accept",
        Requirement::Action(ReportDecide),
    ),
    (
        "POST",
        "/api/v1/reports/{id}/return",
        Requirement::Action(ReportDecide),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/cancel",
        Requirement::Action(ProposalCancel),
    ),
    (
        "POST",
        "/api/v1/proposals/{id}/close",
        Requirement::Action(ProposalClose),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/exports/iati-activities.xml",
        Requirement::Action(IatiExport),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/exports/proposals.csv",
        Requirement::Action(ExportRead),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/exports/transactions.csv",
        Requirement::Action(ExportRead),
    ),
    (
        "GET",
        "/api/v1/activities/exports/3w.csv",
        Requirement::Action(ActivityRead),
    ),
    (
        "GET",
        "/api/v1/pools/{id}/report",
        Requirement::Action(PoolReportRead),
    ),
    // Notifications (issue 17): your own feed and preference; an organisation's webhooks.
    ("GET", "/api/v1/me/notifications", Requirement::Authenticated),
    (
        "POST",
        "/api/v1/me/notifications/read-all",
        Requirement::Authenticated,
    ),
    (
        "POST",
        "/api/v1/me/notifications/{id}/read",
        Requirement::Authenticated,
    ),
    (
        "GET",
        "/api/v1/me/notification-preferences",
        Requirement::Authenticated,
    ),
    (
        "PUT",
        "/api/v1/me/notification-preferences",
        Requirement::Authenticated,
    ),
    (
        "GET",
        "/api/v1/organizations/{id}/webhooks",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "POST",
        "/api/v1/organizations/{id}/webhooks",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "GET",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "PATCH",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "DELETE",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "POST",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}/rotate-secret",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "GET",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}/deliveries",
        Requirement::Action(OrganizationWebhookManage),
    ),
    (
        "POST",
        "/api/v1/organizations/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        Requirement::Action(OrganizationWebhookManage),
    ),
];

/// The requirement of a route, or `None` when the table has no line for it (deny).
pub fn requirement_for_route(method: &str, template: &str) -> Option<Requirement> {
    ROUTES
        .iter()
        .find(|(m, t, _)| *m == method && *t == template)
        .map(|(_, _, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_named_by_a_route_has_a_policy_line() {
        for (method, template, req) in ROUTES {
            if let Requirement::Action(action) = req {
                assert!(
                    !action.permitted_hats().is_empty(),
                    "{method} {template}: {action:?} has no hats"
                );
            }
        }
    }

    /// A read needs no `Acting-Hat` (issue 15): an action is a read exactly when every route naming it is a GET,
    /// so a new GET-only action missing from `is_read` (the exports were) fails here, not in a user's script.
    #[test]
    fn an_action_is_a_read_exactly_when_only_gets_name_it() {
        let mut methods: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
        let mut actions = Vec::new();
        for (method, _, req) in ROUTES {
            if let Requirement::Action(action) = req {
                methods.entry(format!("{action:?}")).or_default().push(method);
                actions.push(*action);
            }
        }
        for action in actions {
            let only_gets = methods[&format!("{action:?}")].iter().all(|m| *m == "GET");
            assert_eq!(
                action.is_read(),
                only_gets,
                "{action:?}: is_read() disagrees with its routes' methods"
            );
        }
    }

    #[test]
    fn routes_are_unique() {
        for (i, (m, t, _)) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..].iter().any(|(m2, t2, _)| m == m2 && t == t2),
                "{m} {t} twice"
            );
        }
    }

    #[test]
    fn lifecycle_performers_hold_the_hats_the_policy_gives_their_routes() {
        use crate::domain::lifecycle::{self, Performer};
        let wired = [
            (lifecycle::Action::Create, ProposalCreate),
            (lifecycle::Action::Edit, ProposalEdit),
            (lifecycle::Action::Submit, ProposalSubmit),
            (lifecycle::Action::Withdraw, ProposalWithdraw),
            (lifecycle::Action::Revise, ProposalRevise),
        ];
        for (lifecycle_action, policy_action) in wired {
            for t in lifecycle::TRANSITIONS
                .iter()
                .filter(|t| t.action == lifecycle_action)
            {
                let Performer::Hat(name) = t.performer else {
                    panic!("{lifecycle_action:?} has no fixed hat")
                };
                let hat: Hat = name.parse().unwrap_or_else(|e: String| panic!("{e}"));
                assert_eq!(policy_action.permitted_hats(), &[hat], "{lifecycle_action:?}");
            }
        }
    }

    #[test]
    fn administrators_never_touch_money_or_decisions() {
        for (action, hats) in POLICY {
            if hats.contains(&Hat::Admin) {
                assert!(
                    format!("{action:?}").starts_with("Organization")
                        || format!("{action:?}").starts_with("User")
                        || format!("{action:?}").starts_with("Hat")
                        || format!("{action:?}").starts_with("Audit"),
                    "admin may {action:?}"
                );
            }
        }
    }
}
