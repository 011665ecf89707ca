//! The Admin calls for dashboard users: checked names, roles and passwords, argon2id hashes, and
//! the store's user table (no snapshot version: users are not configuration).

use tokenrouter_proto::v1::{DashboardUser, DashboardUserDelete, DashboardUserWrite};
use tonic::Status;

use crate::error::ControlPlaneError;
use crate::passwords;
use crate::registry::now_ms;
use crate::store::Store;
use crate::store::users::UserRow;

/// The roles a dashboard user can have.
pub const ROLES: [&str; 2] = ["admin", "viewer"];

fn bad(field: &str, message: impl Into<String>) -> Status {
    ControlPlaneError::BadRequest {
        field: field.into(),
        message: message.into(),
    }
    .into()
}

fn store_error(e: crate::store::StoreError) -> Status {
    ControlPlaneError::Store(e).into()
}

/// Whether `name` is a valid user name: 1 to 64 of letters, digits, `.`, `_`, `-` and `@`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

fn listed(u: &UserRow) -> DashboardUser {
    DashboardUser {
        name: u.name.clone(),
        role: u.role.clone(),
        created_unix_ms: u.created_ms,
        updated_unix_ms: u.updated_ms,
    }
}

pub async fn list(store: &dyn Store) -> Result<Vec<DashboardUser>, Status> {
    let users = store.dashboard_users().await.map_err(store_error)?;
    Ok(users.iter().map(listed).collect())
}

pub async fn put(store: &dyn Store, w: DashboardUserWrite) -> Result<DashboardUser, Status> {
    if !valid_name(&w.name) {
        return Err(bad(
            "name",
            "must be 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    if !ROLES.contains(&w.role.as_str()) {
        return Err(bad("role", "must be \"admin\" or \"viewer\""));
    }
    if let Some(why) = passwords::refusal(&w.password) {
        return Err(bad("password", why));
    }
    let password_hash = passwords::hash(w.password)
        .await
        .map_err(|e| Status::internal(format!("cannot hash the password: {e}")))?;
    let now = now_ms();
    let row = UserRow {
        name: w.name.clone(),
        role: w.role,
        password_hash,
        created_ms: now,
        updated_ms: now,
    };
    if !store
        .put_dashboard_user(row, w.replace)
        .await
        .map_err(store_error)?
    {
        return Err(ControlPlaneError::AlreadyExists {
            kind: "dashboard user",
            name: w.name,
        }
        .into());
    }
    let stored = store
        .dashboard_user(w.name.clone())
        .await
        .map_err(store_error)?
        .ok_or_else(|| Status::unavailable("the user was written but cannot be read back"))?;
    tracing::info!(user = %stored.name, role = %stored.role, "dashboard user written");
    Ok(listed(&stored))
}

pub async fn delete(store: &dyn Store, d: DashboardUserDelete) -> Result<DashboardUser, Status> {
    let existing = store
        .dashboard_user(d.name.clone())
        .await
        .map_err(store_error)?;
    let found = match existing {
        Some(u)
            if store
                .delete_dashboard_user(d.name.clone())
                .await
                .map_err(store_error)? =>
        {
            u
        }
        _ => {
            return Err(ControlPlaneError::NotFound {
                kind: "dashboard user",
                name: d.name,
            }
            .into());
        }
    };
    tracing::info!(user = %found.name, "dashboard user removed");
    Ok(listed(&found))
}
