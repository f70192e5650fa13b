//! The caller of a request once authorized: who they are, every hat valid now, and the hat this action is
//! taken in. Built by the authorization middleware from the database, never from the token's claims.

use super::{Hat, HatGrant, ResolvedHat};
use crate::features::audit::AuditContext;

#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub username: String,
    pub organization_id: String,
    /// Every grant that gives power now.
    pub grants: Vec<HatGrant>,
    /// The hat this request acts in (`None` on routes any signed-in user may call, like `/me`).
    pub acting_in: Option<ResolvedHat>,
    pub request_id: String,
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn hat(&self) -> Option<Hat> {
        self.acting_in.as_ref().map(|r| r.hat)
    }

    /// Audit context for events this actor causes: person, organisation, hat and whether acting (OIC).
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            actor_id: Some(self.user_id.clone()),
            actor_username: Some(self.username.clone()),
            organization_id: Some(self.organization_id.clone()),
            hat: self.hat().map(|h| h.as_str().to_owned()),
            acting: self.acting_in.as_ref().is_some_and(|r| r.acting()),
            request_id: Some(self.request_id.clone()),
            client_addr: self.client_addr.clone(),
        }
    }
}
