//! Every stored status and kind outside the proposal lifecycle (which is `lifecycle::State`) as a domain enum:
//! versions, approval steps, consultees, rounds, flags, tranches and reports. Repos convert at their boundary
//! with `FromStr`; a stored name that is not one of these is an [`UnknownStored`] error (a 500 with the cause
//! logged), never a default. The serde form, the OpenAPI values and the stored name are the same snake_case text.

use std::fmt;

/// A stored name that is none of the values of its enum: the database holds something this code never wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStored {
    /// What was being read, e.g. `"approval step status"`.
    pub kind: &'static str,
    /// The stored text.
    pub given: String,
}

impl fmt::Display for UnknownStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored {} `{}` is not a known value", self.kind, self.given)
    }
}

impl std::error::Error for UnknownStored {}

/// The diesel `deserialize_as` / `serialize_as` pair for an enum stored as its name, for enums declared outside
/// [`stored_enum!`]: reading a name `$parse` does not know fails with [`UnknownStored`] (the query fails, the
/// row is never skipped or defaulted); writing stores `as_str()`.
macro_rules! stored_name {
    ($name:ty, $what:literal, $parse:expr) => {
        impl TryFrom<String> for $name {
            type Error = $crate::domain::status::UnknownStored;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                let parse: fn(&str) -> Option<$name> = $parse;
                parse(&text).ok_or($crate::domain::status::UnknownStored {
                    kind: $what,
                    given: text,
                })
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }
    };
}
pub(crate) use stored_name;

/// Declares a stored enum: its variants and their stored names, `ALL`, `as_str`, `FromStr` (refusing unknown
/// names with [`UnknownStored`]), `Display`, and the serde/OpenAPI derives.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and serde) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStored;

            fn from_str(text: &str) -> Result<Self, UnknownStored> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| UnknownStored { kind: $what, given: text.to_owned() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Reading the stored name (diesel's `deserialize_as`): an unknown name fails the query.
        impl TryFrom<String> for $name {
            type Error = UnknownStored;

            fn try_from(text: String) -> Result<Self, UnknownStored> {
                text.parse()
            }
        }

        /// Writing the stored name (diesel's `serialize_as`).
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }
    };
}

stored_enum!(
    /// A proposal version.
    VersionStatus, "proposal version status" {
        /// Editable by its submitter.
        Draft => "draft",
        /// Submitted: immutable.
        Submitted => "submitted",
    }
);

stored_enum!(
    /// An approval step.
    StepStatus, "approval step status" {
        /// Not decided yet (open when `opened_at` is set).
        Pending => "pending",
        Approved => "approved",
        Returned => "returned",
        Rejected => "rejected",
        /// An earlier step returned or rejected the version; this one will never be decided.
        Superseded => "superseded",
    }
);

stored_enum!(
    /// A consultee in a round: waiting, its answer, lapsed at the deadline, or resolved (asked to confirm the
    /// resolution of its blocking flags, it ended the last of them).
    ConsulteeStatus, "consultee status" {
        Pending => "pending",
        NoObjection => "no_objection",
        Comment => "comment",
        Objection => "objection",
        Lapsed => "lapsed",
        Resolved => "resolved",
    }
);

stored_enum!(
    /// How a consultation round closed.
    RoundOutcome, "consultation round outcome" {
        /// No open blocking flag: on to review.
        Clear => "clear",
        /// At least one open blocking flag.
        Flagged => "flagged",
    }
);

stored_enum!(
    /// What closed a consultation round.
    RoundClosedBy, "consultation round closer" {
        /// The last awaited answer.
        AllAnswered => "all_answered",
        /// The deadline sweep.
        Deadline => "deadline",
    }
);

stored_enum!(
    /// A conflict flag.
    FlagStatus, "flag status" {
        Open => "open",
        /// Withdrawn by the raising organisation (or superseded by its changed answer).
        Withdrawn => "withdrawn",
        /// The raising organisation confirmed a revision answered it.
        Resolved => "resolved",
        /// The HC overrode it.
        Overridden => "overridden",
    }
);

stored_enum!(
    /// A tranche of an approved proposal.
    TrancheStatus, "tranche status" {
        /// Not fully paid yet.
        Scheduled => "scheduled",
        Paid => "paid",
        /// Unpaid at cancellation.
        Voided => "voided",
        /// Unpaid at close-out, waived with a reason.
        Waived => "waived",
    }
);

stored_enum!(
    /// An implementation report.
    ReportKind, "report kind" {
        Progress => "progress",
        Completion => "completion",
    }
);

stored_enum!(
    /// Where an implementation report stands.
    ReportStatus, "report status" {
        Submitted => "submitted",
        Accepted => "accepted",
        Returned => "returned",
    }
);

stored_enum!(
    /// What a conflict flag is about.
    FlagCategory, "flag category" {
        Duplication => "duplication",
        HumanitarianSpace => "humanitarian_space",
        DoNoHarm => "do_no_harm",
        LocalCapacity => "local_capacity",
        ProtectionRisk => "protection_risk",
        Sustainability => "sustainability",
        AlreadyFunded => "already_funded",
        Other => "other",
    }
);

stored_enum!(
    /// Whether a flag can hold the proposal.
    Severity, "flag severity" {
        Advisory => "advisory",
        /// Holds the proposal in `flagged` while open.
        Blocking => "blocking",
    }
);

stored_enum!(
    /// A consultee's answer.
    ResponseKind, "consultation response kind" {
        NoObjection => "no_objection",
        Comment => "comment",
        /// Raises at least one flag.
        Objection => "objection",
    }
);

stored_enum!(
    /// Why an organisation is consulted in a round.
    ReasonKind, "consultee reason" {
        /// A consultation rule for the sector (and area).
        Rule => "rule",
        /// Consulted on every proposal.
        AlwaysConsult => "always_consult",
        /// It runs an overlapping 3W activity.
        Overlap => "overlap",
        /// Added by the QIP secretariat.
        Manual => "manual",
        /// It raised a flag on an earlier version.
        EarlierObjection => "earlier_objection",
        /// After a revision it holds open blocking flags and is asked to confirm the revision resolves them.
        ConfirmResolution => "confirm_resolution",
    }
);

stored_enum!(
    /// A 3W activity of the registry.
    ActivityStatus, "activity status" {
        Planned => "planned",
        Ongoing => "ongoing",
        /// Closed with `POST /activities/{id}/close`: no longer screened, never reopened by an import.
        Closed => "closed",
    }
);

stored_enum!(
    /// A notification delivery (email or webhook) in the outbox.
    DeliveryStatus, "notification delivery status" {
        /// Waiting for its next attempt.
        Pending => "pending",
        Delivered => "delivered",
        /// Retries exhausted (or its endpoint deleted); redelivered only on request.
        Dead => "dead",
    }
);

stored_enum!(
    /// A user account as shown: `active`, `locked` (too many failed sign-ins, until `locked_until`; derived, not
    /// stored) or `disabled` (by an administrator).
    UserStatus, "user status" {
        Active => "active",
        Locked => "locked",
        Disabled => "disabled",
    }
);

stored_enum!(
    /// A request for a privileged hat awaiting a second administrator (dual control).
    GrantRequestStatus, "hat grant request status" {
        Pending => "pending",
        Confirmed => "confirmed",
        Refused => "refused",
        /// Withdrawn by the administrator who asked.
        Cancelled => "cancelled",
        /// Still pending past `expires_at` (derived when read).
        Expired => "expired",
    }
);

stored_enum!(
    /// A user account as stored: the administrator's switch. Being locked by failed sign-ins is not stored here
    /// (it is `locked_until`), so [`UserStatus::Locked`] is shown but never stored.
    AccountStatus, "user status" {
        Active => "active",
        /// Disabled by an administrator: cannot sign in or act.
        Disabled => "disabled",
    }
);

stored_enum!(
    /// Kinds of organisation (DESIGN.md §6).
    OrganizationKind, "organisation kind" {
        MilitaryUnit => "military_unit",
        MissionSection => "mission_section",
        UnAgency => "un_agency",
        Ngo => "ngo",
        Coordination => "coordination",
        LocalAuthority => "local_authority",
        Contributor => "contributor",
        MissionOffice => "mission_office",
    }
);

impl OrganizationKind {
    /// Humanitarian organisations (answer consultations, keep the 3W registry).
    pub fn is_humanitarian(self) -> bool {
        matches!(
            self,
            OrganizationKind::UnAgency | OrganizationKind::Ngo | OrganizationKind::Coordination
        )
    }
}

stored_enum!(
    /// A decision on an approval step.
    Decision, "approval step decision" {
        Approve => "approve",
        /// Back to the submitter for a revision.
        Return => "return",
        Reject => "reject",
    }
);

stored_enum!(
    /// How a notification delivery reaches its recipient.
    DeliveryChannel, "notification delivery channel" {
        /// An email to a user (at once or in the daily digest).
        Email => "email",
        /// A signed POST to an organisation's webhook endpoint.
        Webhook => "webhook",
    }
);

stored_enum!(
    /// Where a hat grant request was settled.
    DecidedVia, "hat grant request settlement channel" {
        /// By a second administrator over the API.
        Api => "api",
        /// At the server's console (`qip-pool admin confirm-grant`).
        Console => "console",
    }
);

stored_enum!(
    /// Why a password setup token was issued.
    SetupTokenPurpose, "setup token purpose" {
        /// The account was just created.
        Create => "create",
        /// An administrator reset the password.
        Reset => "reset",
    }
);

stored_enum!(
    /// A reader's email preference for notifications (no stored preference means `immediate`).
    EmailMode, "email preference" {
        Immediate => "immediate",
        DailyDigest => "daily_digest",
        Off => "off",
    }
);

/// An answer is the consultee's status in its round.
impl From<ResponseKind> for ConsulteeStatus {
    fn from(kind: ResponseKind) -> Self {
        match kind {
            ResponseKind::NoObjection => ConsulteeStatus::NoObjection,
            ResponseKind::Comment => ConsulteeStatus::Comment,
            ResponseKind::Objection => ConsulteeStatus::Objection,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::str::FromStr;

    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + FromStr<Err = UnknownStored> + serde::Serialize,
        T: fmt::Display,
    {
        let mut seen = HashSet::new();
        for value in all {
            let text = value.to_string();
            assert!(seen.insert(text.clone()), "duplicate name {text}");
            assert_eq!(T::from_str(&text).as_ref(), Ok(value));
            // The stored name is the serde (API) name.
            assert_eq!(serde_json::to_value(value).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn every_stored_enum_round_trips_through_its_stored_name_and_serde() {
        round_trips(VersionStatus::ALL);
        round_trips(StepStatus::ALL);
        round_trips(ConsulteeStatus::ALL);
        round_trips(RoundOutcome::ALL);
        round_trips(RoundClosedBy::ALL);
        round_trips(FlagStatus::ALL);
        round_trips(TrancheStatus::ALL);
        round_trips(ReportKind::ALL);
        round_trips(ReportStatus::ALL);
        round_trips(FlagCategory::ALL);
        round_trips(Severity::ALL);
        round_trips(ResponseKind::ALL);
        round_trips(ReasonKind::ALL);
        round_trips(ActivityStatus::ALL);
        round_trips(DeliveryStatus::ALL);
        round_trips(UserStatus::ALL);
        round_trips(GrantRequestStatus::ALL);
        round_trips(AccountStatus::ALL);
        round_trips(OrganizationKind::ALL);
        round_trips(Decision::ALL);
        round_trips(DeliveryChannel::ALL);
        round_trips(DecidedVia::ALL);
        round_trips(SetupTokenPurpose::ALL);
        round_trips(EmailMode::ALL);
    }

    #[test]
    fn an_unknown_stored_name_is_an_error_naming_what_was_read() {
        let err = "payable".parse::<TrancheStatus>().unwrap_err();
        assert_eq!(
            err,
            UnknownStored {
                kind: "tranche status",
                given: "payable".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "stored tranche status `payable` is not a known value"
        );
        assert!("".parse::<StepStatus>().is_err());
        assert!(
            "Pending".parse::<StepStatus>().is_err(),
            "names are case-sensitive"
        );
    }
}
