//! Typed ids: one newtype per kind of row, so a function that takes a proposal and a step (or an organisation
//! and a webhook) cannot be handed them the wrong way round. Ids are stored and compared as text (UUIDv7 strings,
//! see `db/schema.rs`), so each newtype wraps the stored text unchanged: serde-transparent, the same on the wire,
//! and documented as a UUID string in OpenAPI. Building one from a path segment does not validate it: a
//! malformed id simply finds no row (404), as before.

/// Declares typed ids: the newtype, its derives, `as_str`, `Display`, `From<String>`/`From<&str>`, `AsRef<str>`
/// and `PartialEq<str>`.
macro_rules! typed_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
                utoipa::ToSchema)]
            #[serde(transparent)]
            #[schema(value_type = String, format = Uuid)]
            pub struct $name(String);

            impl $name {
                /// The stored text.
                pub fn as_str(&self) -> &str {
                    &self.0
                }

                /// The stored text, owned.
                pub fn into_string(self) -> String {
                    self.0
                }
            }

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(&self.0)
                }
            }

            impl From<String> for $name {
                fn from(id: String) -> Self {
                    Self(id)
                }
            }

            impl From<&str> for $name {
                fn from(id: &str) -> Self {
                    Self(id.to_owned())
                }
            }

            impl From<$name> for String {
                fn from(id: $name) -> String {
                    id.0
                }
            }

            impl AsRef<str> for $name {
                fn as_ref(&self) -> &str {
                    &self.0
                }
            }

            impl PartialEq<str> for $name {
                fn eq(&self, other: &str) -> bool {
                    self.0 == other
                }
            }
        )+
    };
}

typed_id! {
    /// A proposal (`proposals.id`).
    ProposalId;
    /// A pool (`pools.id`).
    PoolId;
    /// An organisation (`organizations.id`).
    OrganisationId;
    /// A user account (`users.id`).
    UserId;
    /// An approval step (`approval_steps.id`).
    StepId;
    /// A consultation flag (`flags.id`).
    FlagId;
    /// A consultation round (`consultation_rounds.id`).
    RoundId;
    /// An implementation report (`reports.id`).
    ReportId;
    /// A ledger transaction (`ledger_transactions.id`): never to be confused with the pool it belongs to or
    /// the proposal it moves money for.
    TransactionId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_stored_text_on_the_wire_and_in_display() {
        let id = ProposalId::from("0195a3c8-0000-7000-8000-000000000001");
        assert_eq!(id.as_str(), "0195a3c8-0000-7000-8000-000000000001");
        assert_eq!(id.to_string(), id.as_str());
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json, serde_json::json!("0195a3c8-0000-7000-8000-000000000001"));
        assert_eq!(serde_json::from_value::<ProposalId>(json).unwrap(), id);
        assert!(id == *"0195a3c8-0000-7000-8000-000000000001");
        assert_eq!(String::from(id.clone()), id.into_string());
    }
}
