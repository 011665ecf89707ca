//! The dashboard's users as both backends keep them: one row per name with its role and argon2id
//! password hash, outside the versioned resources (a user is not configuration: no snapshot ever
//! carries one), and the SQL written once with a placeholder style per backend.

/// One dashboard user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The PHC string of its argon2id hash.
    pub password_hash: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const FIELDS: &str = "name, role, password_hash, created_ms, updated_ms";

/// Every user, by name.
pub fn select_all() -> String {
    format!("SELECT {FIELDS} FROM tokenrouter_dashboard_users ORDER BY name")
}

/// One user by name.
pub fn select_one(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {FIELDS} FROM tokenrouter_dashboard_users WHERE name = {}",
        p(1)
    )
}

/// Adds a user; with `replace`, an existing one gets the new role and hash (keeping its creation
/// time), otherwise it is left alone and the statement changes no row.
pub fn insert(replace: bool, p: impl Fn(usize) -> String) -> String {
    let conflict = if replace {
        "DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
           updated_ms = excluded.updated_ms"
    } else {
        "DO NOTHING"
    };
    format!(
        "INSERT INTO tokenrouter_dashboard_users ({FIELDS}) VALUES ({}, {}, {}, {}, {})
         ON CONFLICT (name) {conflict}",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    )
}

/// Removes a user by name.
pub fn delete(p: impl Fn(usize) -> String) -> String {
    format!(
        "DELETE FROM tokenrouter_dashboard_users WHERE name = {}",
        p(1)
    )
}

#[cfg(test)]
pub(crate) mod contract {
    //! What every backend must do with dashboard users.

    use super::UserRow;
    use crate::store::Store;

    fn user(name: &str, role: &str, hash: &str, at: i64) -> UserRow {
        UserRow {
            name: name.into(),
            role: role.into(),
            password_hash: hash.into(),
            created_ms: at,
            updated_ms: at,
        }
    }

    pub async fn keeps_users_apart_from_the_configuration(store: &dyn Store) {
        let version = store.head().await.unwrap().0;
        assert!(store.dashboard_users().await.unwrap().is_empty());
        assert!(
            store
                .put_dashboard_user(user("ana", "admin", "h1", 1), false)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_dashboard_user(user("ana", "viewer", "h2", 2), false)
                .await
                .unwrap(),
            "a taken name is refused without replace"
        );
        assert_eq!(
            store.dashboard_user("ana".into()).await.unwrap(),
            Some(user("ana", "admin", "h1", 1))
        );
        assert!(
            store
                .put_dashboard_user(user("ana", "viewer", "h2", 2), true)
                .await
                .unwrap()
        );
        let ana = store.dashboard_user("ana".into()).await.unwrap().unwrap();
        assert_eq!(
            (ana.role.as_str(), ana.password_hash.as_str()),
            ("viewer", "h2")
        );
        assert_eq!((ana.created_ms, ana.updated_ms), (1, 2));
        store
            .put_dashboard_user(user("bo", "viewer", "h3", 3), false)
            .await
            .unwrap();
        let names: Vec<String> = store
            .dashboard_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["ana", "bo"]);
        assert!(store.delete_dashboard_user("ana".into()).await.unwrap());
        assert!(!store.delete_dashboard_user("ana".into()).await.unwrap());
        assert_eq!(store.dashboard_user("ana".into()).await.unwrap(), None);
        assert_eq!(
            store.head().await.unwrap().0,
            version,
            "users commit no version"
        );
    }
}
