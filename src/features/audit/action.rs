//! Every audit action as one enum: the list of what the trail records, documented and searchable (after
//! crates.io's typed `VersionAction`). The stored strings are exactly the ones the chain has always held, so
//! existing chains still verify; `as_str` gives them to whoever maps actions (notifications, reports).

use std::fmt;
use std::str::FromStr;

/// What an audit event records. Stored as its dotted name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
    /// `access.denied`: A protected request was refused (any route, any hat).
    AccessDenied,
    /// `activity.create`: A 3W activity was registered.
    ActivityCreate,
    /// `activity.update`: A 3W activity was changed.
    ActivityUpdate,
    /// `activity.close`: A 3W activity was closed.
    ActivityClose,
    /// `activity.import`: 3W activities were imported from HXL.
    ActivityImport,
    /// `approval.decide`: An approval step was decided (approve, return, reject).
    ApprovalDecide,
    /// `approval.steps_instantiated`: The approval steps of a version were created on entering review (system).
    ApprovalStepsInstantiated,
    /// `areas.import`: Administrative areas were imported.
    AreasImport,
    /// `audit.checkpoint`: The audit chain head was checkpointed.
    AuditCheckpoint,
    /// `audit.read`: The audit trail was read.
    AuditRead,
    /// `audit.verify`: The audit chain was verified.
    AuditVerify,
    /// `auth.jwt_secret`: The token signing secret was configured.
    AuthJwtSecret,
    /// `auth.login`: A sign-in attempt.
    AuthLogin,
    /// `auth.login_throttled`: A sign-in refused by throttling.
    AuthLoginThrottled,
    /// `auth.logout`: A sign-out.
    AuthLogout,
    /// `auth.refresh`: A session refresh.
    AuthRefresh,
    /// `auth.refresh_reuse`: A refresh token was used twice (the session is cut off).
    AuthRefreshReuse,
    /// `auth.setup_password`: A password was set with a setup token.
    AuthSetupPassword,
    /// `consultation.open`: A consultation round opened (system, after a submission).
    ConsultationOpen,
    /// `consultation.respond`: A consultee answered.
    ConsultationRespond,
    /// `consultation.add_consultee`: The QIP secretariat added a consultee.
    ConsultationAddConsultee,
    /// `consultation.lapse`: Pending consultees lapsed at the deadline (system).
    ConsultationLapse,
    /// `consultation.close`: A round closed and the proposal moved on (system).
    ConsultationClose,
    /// `consultation.resolution_confirmed`: A flag raiser's resolution counted as its answer (system).
    ConsultationResolutionConfirmed,
    /// `consultation_rule.create`: A consultation rule was created.
    ConsultationRuleCreate,
    /// `consultation_rule.delete`: A consultation rule was deleted.
    ConsultationRuleDelete,
    /// `flag.withdraw`: The raising organisation withdrew a flag.
    FlagWithdraw,
    /// `flag.resolve`: The raising organisation confirmed a revision resolves a flag.
    FlagResolve,
    /// `flag.override`: The HC overrode a flag.
    FlagOverride,
    /// `hat.grant`: A hat was granted.
    HatGrant,
    /// `hat.grant_request`: A privileged hat grant was requested (dual control).
    HatGrantRequest,
    /// `hat.grant_confirm`: A second administrator confirmed a pending grant.
    HatGrantConfirm,
    /// `hat.grant_refuse`: A pending grant was refused.
    HatGrantRefuse,
    /// `hat.grant_cancel`: A pending grant was cancelled.
    HatGrantCancel,
    /// `hat.revoke`: A hat was revoked.
    HatRevoke,
    /// `implementation.disburse`: A tranche payment was recorded.
    ImplementationDisburse,
    /// `implementation.refund`: A refund was recorded.
    ImplementationRefund,
    /// `ledger.contribution`: A donor contribution was posted.
    LedgerContribution,
    /// `ledger.commitment`: Funds were committed to a proposal.
    LedgerCommitment,
    /// `ledger.disbursement`: A disbursement was posted.
    LedgerDisbursement,
    /// `ledger.release`: A commitment was released.
    LedgerRelease,
    /// `ledger.refund`: A refund was posted.
    LedgerRefund,
    /// `ledger.reversal`: A posting was reversed.
    LedgerReversal,
    /// `organization.create`: An organisation was created.
    OrganizationCreate,
    /// `pool.create`: A pool was created.
    PoolCreate,
    /// `pool.update`: A pool's settings changed (new settings version).
    PoolUpdate,
    /// `proposal.create`: A proposal was started.
    ProposalCreate,
    /// `proposal.edit`: A draft was changed.
    ProposalEdit,
    /// `proposal.submit`: A draft was submitted.
    ProposalSubmit,
    /// `proposal.revise`: A flagged proposal's submitter opened a revision.
    ProposalRevise,
    /// `proposal.withdraw`: The submitter withdrew a proposal.
    ProposalWithdraw,
    /// `proposal.flags_cleared`: The last blocking flag ended and the proposal moved to review (system).
    ProposalFlagsCleared,
    /// `proposal.cancel`: An approved proposal was cancelled.
    ProposalCancel,
    /// `proposal.close`: A completed proposal was closed.
    ProposalClose,
    /// `report.submit`: A report was submitted.
    ReportSubmit,
    /// `report.accept`: A report was accepted.
    ReportAccept,
    /// `report.return`: A report was returned.
    ReportReturn,
    /// `user.create`: A user was created.
    UserCreate,
    /// `user.disable`: A user was disabled.
    UserDisable,
    /// `user.enable`: A user was enabled.
    UserEnable,
    /// `user.password_set`: A user's password was set.
    UserPasswordSet,
    /// `user.reset_password`: A password reset was started.
    UserResetPassword,
    /// `notification_preferences.update`: A user's notification preferences changed.
    NotificationPreferencesUpdate,
    /// `webhook.create`: A webhook subscription was created.
    WebhookCreate,
    /// `webhook.update`: A webhook subscription was changed.
    WebhookUpdate,
    /// `webhook.delete`: A webhook subscription was deleted.
    WebhookDelete,
    /// `webhook.rotate_secret`: A webhook's signing secret was rotated.
    WebhookRotateSecret,
    /// `webhook.redeliver`: A webhook delivery was queued again.
    WebhookRedeliver,
    /// `webhook.manage`: An organisation's webhooks were managed (the action a refusal records).
    WebhookManage,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 69] = [
        AuditAction::AccessDenied,
        AuditAction::ActivityCreate,
        AuditAction::ActivityUpdate,
        AuditAction::ActivityClose,
        AuditAction::ActivityImport,
        AuditAction::ApprovalDecide,
        AuditAction::ApprovalStepsInstantiated,
        AuditAction::AreasImport,
        AuditAction::AuditCheckpoint,
        AuditAction::AuditRead,
        AuditAction::AuditVerify,
        AuditAction::AuthJwtSecret,
        AuditAction::AuthLogin,
        AuditAction::AuthLoginThrottled,
        AuditAction::AuthLogout,
        AuditAction::AuthRefresh,
        AuditAction::AuthRefreshReuse,
        AuditAction::AuthSetupPassword,
        AuditAction::ConsultationOpen,
        AuditAction::ConsultationRespond,
        AuditAction::ConsultationAddConsultee,
        AuditAction::ConsultationLapse,
        AuditAction::ConsultationClose,
        AuditAction::ConsultationResolutionConfirmed,
        AuditAction::ConsultationRuleCreate,
        AuditAction::ConsultationRuleDelete,
        AuditAction::FlagWithdraw,
        AuditAction::FlagResolve,
        AuditAction::FlagOverride,
        AuditAction::HatGrant,
        AuditAction::HatGrantRequest,
        AuditAction::HatGrantConfirm,
        AuditAction::HatGrantRefuse,
        AuditAction::HatGrantCancel,
        AuditAction::HatRevoke,
        AuditAction::ImplementationDisburse,
        AuditAction::ImplementationRefund,
        AuditAction::LedgerContribution,
        AuditAction::LedgerCommitment,
        AuditAction::LedgerDisbursement,
        AuditAction::LedgerRelease,
        AuditAction::LedgerRefund,
        AuditAction::LedgerReversal,
        AuditAction::OrganizationCreate,
        AuditAction::PoolCreate,
        AuditAction::PoolUpdate,
        AuditAction::ProposalCreate,
        AuditAction::ProposalEdit,
        AuditAction::ProposalSubmit,
        AuditAction::ProposalRevise,
        AuditAction::ProposalWithdraw,
        AuditAction::ProposalFlagsCleared,
        AuditAction::ProposalCancel,
        AuditAction::ProposalClose,
        AuditAction::ReportSubmit,
        AuditAction::ReportAccept,
        AuditAction::ReportReturn,
        AuditAction::UserCreate,
        AuditAction::UserDisable,
        AuditAction::UserEnable,
        AuditAction::UserPasswordSet,
        AuditAction::UserResetPassword,
        AuditAction::NotificationPreferencesUpdate,
        AuditAction::WebhookCreate,
        AuditAction::WebhookUpdate,
        AuditAction::WebhookDelete,
        AuditAction::WebhookRotateSecret,
        AuditAction::WebhookRedeliver,
        AuditAction::WebhookManage,
    ];

    /// The stored name, e.g. `proposal.submit`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AccessDenied => "access.denied",
            AuditAction::ActivityCreate => "activity.create",
            AuditAction::ActivityUpdate => "activity.update",
            AuditAction::ActivityClose => "activity.close",
            AuditAction::ActivityImport => "activity.import",
            AuditAction::ApprovalDecide => "approval.decide",
            AuditAction::ApprovalStepsInstantiated => "approval.steps_instantiated",
            AuditAction::AreasImport => "areas.import",
            AuditAction::AuditCheckpoint => "audit.checkpoint",
            AuditAction::AuditRead => "audit.read",
            AuditAction::AuditVerify => "audit.verify",
            AuditAction::AuthJwtSecret => "auth.jwt_secret",
            AuditAction::AuthLogin => "auth.login",
            AuditAction::AuthLoginThrottled => "auth.login_throttled",
            AuditAction::AuthLogout => "auth.logout",
            AuditAction::AuthRefresh => "auth.refresh",
            AuditAction::AuthRefreshReuse => "auth.refresh_reuse",
            AuditAction::AuthSetupPassword => "auth.setup_password",
            AuditAction::ConsultationOpen => "consultation.open",
            AuditAction::ConsultationRespond => "consultation.respond",
            AuditAction::ConsultationAddConsultee => "consultation.add_consultee",
            AuditAction::ConsultationLapse => "consultation.lapse",
            AuditAction::ConsultationClose => "consultation.close",
            AuditAction::ConsultationResolutionConfirmed => "consultation.resolution_confirmed",
            AuditAction::ConsultationRuleCreate => "consultation_rule.create",
            AuditAction::ConsultationRuleDelete => "consultation_rule.delete",
            AuditAction::FlagWithdraw => "flag.withdraw",
            AuditAction::FlagResolve => "flag.resolve",
            AuditAction::FlagOverride => "flag.override",
            AuditAction::HatGrant => "hat.grant",
            AuditAction::HatGrantRequest => "hat.grant_request",
            AuditAction::HatGrantConfirm => "hat.grant_confirm",
            AuditAction::HatGrantRefuse => "hat.grant_refuse",
            AuditAction::HatGrantCancel => "hat.grant_cancel",
            AuditAction::HatRevoke => "hat.revoke",
            AuditAction::ImplementationDisburse => "implementation.disburse",
            AuditAction::ImplementationRefund => "implementation.refund",
            AuditAction::LedgerContribution => "ledger.contribution",
            AuditAction::LedgerCommitment => "ledger.commitment",
            AuditAction::LedgerDisbursement => "ledger.disbursement",
            AuditAction::LedgerRelease => "ledger.release",
            AuditAction::LedgerRefund => "ledger.refund",
            AuditAction::LedgerReversal => "ledger.reversal",
            AuditAction::OrganizationCreate => "organization.create",
            AuditAction::PoolCreate => "pool.create",
            AuditAction::PoolUpdate => "pool.update",
            AuditAction::ProposalCreate => "proposal.create",
            AuditAction::ProposalEdit => "proposal.edit",
            AuditAction::ProposalSubmit => "proposal.submit",
            AuditAction::ProposalRevise => "proposal.revise",
            AuditAction::ProposalWithdraw => "proposal.withdraw",
            AuditAction::ProposalFlagsCleared => "proposal.flags_cleared",
            AuditAction::ProposalCancel => "proposal.cancel",
            AuditAction::ProposalClose => "proposal.close",
            AuditAction::ReportSubmit => "report.submit",
            AuditAction::ReportAccept => "report.accept",
            AuditAction::ReportReturn => "report.return",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserEnable => "user.enable",
            AuditAction::UserPasswordSet => "user.password_set",
            AuditAction::UserResetPassword => "user.reset_password",
            AuditAction::NotificationPreferencesUpdate => "notification_preferences.update",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookUpdate => "webhook.update",
            AuditAction::WebhookDelete => "webhook.delete",
            AuditAction::WebhookRotateSecret => "webhook.rotate_secret",
            AuditAction::WebhookRedeliver => "webhook.redeliver",
            AuditAction::WebhookManage => "webhook.manage",
        }
    }

    /// The ledger's event for a posting of `kind`.
    pub fn ledger(kind: crate::domain::ledger_rules::TransactionKind) -> AuditAction {
        use crate::domain::ledger_rules::TransactionKind as K;
        match kind {
            K::Contribution => AuditAction::LedgerContribution,
            K::Commitment => AuditAction::LedgerCommitment,
            K::Disbursement => AuditAction::LedgerDisbursement,
            K::Release => AuditAction::LedgerRelease,
            K::Refund => AuditAction::LedgerRefund,
            K::Reversal => AuditAction::LedgerReversal,
        }
    }
}

/// What an event may be started with: an [`AuditAction`] only, so every action recorded is in the one list.
pub trait ActionName {
    /// The stored name.
    fn action_name(&self) -> &str;
}

impl ActionName for AuditAction {
    fn action_name(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored action name that is not an [`AuditAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAuditAction(pub String);

impl fmt::Display for UnknownAuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a known audit action", self.0)
    }
}

impl std::error::Error for UnknownAuditAction {}

impl FromStr for AuditAction {
    type Err = UnknownAuditAction;

    fn from_str(text: &str) -> Result<AuditAction, UnknownAuditAction> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| UnknownAuditAction(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for action in AuditAction::ALL {
            assert!(seen.insert(action.as_str()), "{action}");
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(action));
        }
        assert!("proposal.teleport".parse::<AuditAction>().is_err());
    }

    #[test]
    fn stored_names_are_the_historical_ones() {
        // Changing one of these breaks the verification of every chain that holds it.
        assert_eq!(AuditAction::ProposalSubmit.as_str(), "proposal.submit");
        assert_eq!(
            AuditAction::ApprovalStepsInstantiated.as_str(),
            "approval.steps_instantiated"
        );
        assert_eq!(AuditAction::ConsultationClose.as_str(), "consultation.close");
        assert_eq!(AuditAction::AccessDenied.as_str(), "access.denied");
        assert_eq!(
            AuditAction::ledger(crate::domain::ledger_rules::TransactionKind::Commitment).as_str(),
            "ledger.commitment"
        );
        for kind in crate::domain::ledger_rules::TransactionKind::ALL {
            assert_eq!(
                AuditAction::ledger(kind).as_str(),
                format!("ledger.{}", kind.as_str())
            );
        }
    }
}
