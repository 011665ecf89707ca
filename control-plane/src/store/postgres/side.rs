//! The PostgreSQL side of the tables beside the usage records: the dashboard's users and the
//! logged bodies (see `store::users` and `store::bodies` for the SQL both backends share).

use deadpool_postgres::GenericClient;
use tokenrouter_proto::v1::UsageRecord;

use crate::store::{StoreError, bodies, users};

pub async fn users(client: &impl GenericClient) -> Result<Vec<users::UserRow>, StoreError> {
    let rows = client.query(&users::select_all(), &[]).await?;
    Ok(rows.iter().map(user_of).collect())
}

pub async fn user(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<users::UserRow>, StoreError> {
    let sql = users::select_one(|i| format!("${i}"));
    Ok(client
        .query_opt(&sql, &[&name])
        .await?
        .as_ref()
        .map(user_of))
}

pub async fn put_user(
    client: &impl GenericClient,
    u: &users::UserRow,
    replace: bool,
) -> Result<bool, StoreError> {
    let sql = users::insert(replace, |i| format!("${i}"));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
        &u.name,
        &u.role,
        &u.password_hash,
        &u.created_ms,
        &u.updated_ms,
    ];
    Ok(client.execute(&sql, &params).await? > 0)
}

pub async fn delete_user(client: &impl GenericClient, name: &str) -> Result<bool, StoreError> {
    let sql = users::delete(|i| format!("${i}"));
    Ok(client.execute(&sql, &[&name]).await? > 0)
}

pub async fn bodies(
    client: &impl GenericClient,
    record_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let row = client
        .query_opt(&bodies::select(|i| format!("${i}")), &[&record_id])
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Keeps the logged bodies of `records` (a body already held stays as it is).
pub async fn add_bodies(
    tx: &deadpool_postgres::Transaction<'_>,
    records: &[UsageRecord],
) -> Result<(), StoreError> {
    let mut logged: Vec<(&str, i64, &str, &str)> = Vec::new();
    for r in records {
        if bodies::has_bodies(r) {
            let (request, response) = (
                bodies::capped(&r.request_body),
                bodies::capped(&r.response_body),
            );
            logged.push((r.record_id.as_str(), r.unix_ms, request, response));
        }
    }
    if logged.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&bodies::insert(|i| format!("${i}")))
        .await?;
    for (id, at, request, response) in logged {
        tx.execute(&stmt, &[&id, &at, &request, &response]).await?;
    }
    Ok(())
}

/// A dashboard user from a row of [`users::select_all`].
fn user_of(r: &tokio_postgres::Row) -> users::UserRow {
    users::UserRow {
        name: r.get(0),
        role: r.get(1),
        password_hash: r.get(2),
        created_ms: r.get(3),
        updated_ms: r.get(4),
    }
}
