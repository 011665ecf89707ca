//! The PostgreSQL store against a real server (`TOKENROUTER_TEST_POSTGRES_URL`): the store
//! contract, and commits announced between copies.

use super::*;

async fn fresh() -> Option<PostgresStore> {
    let url = test_url()?;
    let schema = format!("tr_test_{}", uuid::Uuid::new_v4().simple());
    Some(
        PostgresStore::connect_in_schema(&url, Some(&schema))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn honours_the_store_contract() {
    let Some(store) = fresh().await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    crate::store::contract::starts_empty_and_commits_in_order(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::contract::refuses_a_stale_base(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::contract::records_and_summarises_usage(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::contract::filters_usage_by_key(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::contract::ignores_a_redelivered_record(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::contract::shares_the_data_plane_table(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::dashboard::contract::rolls_up_and_pages_usage(&store).await;
    let Some(store) = fresh().await else { return };
    crate::store::users::contract::keeps_users_apart_from_the_configuration(&store).await;
}

/// A commit through one copy is announced to another on the same database and schema.
#[tokio::test]
async fn announces_each_commit_to_the_other_copies() {
    let Some(url) = test_url() else { return };
    let schema = format!("tr_test_{}", uuid::Uuid::new_v4().simple());
    let writer = PostgresStore::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let reader = PostgresStore::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let mut commits = reader.commits().unwrap();
    // The listening connection opens in the background; commit until one is heard.
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        let mut version = 0;
        loop {
            version = writer.commit(version, vec![]).await.unwrap();
            if tokio::time::timeout(Duration::from_millis(200), commits.changed())
                .await
                .is_ok()
            {
                return (version, *commits.borrow());
            }
        }
    })
    .await
    .expect("a NOTIFY within 10 s");
    assert_eq!(heard.0, heard.1);
    let started = std::time::Instant::now();
    let next = writer.commit(heard.0, vec![]).await.unwrap();
    commits.changed().await.unwrap();
    assert_eq!(*commits.borrow(), next);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn never_describes_the_password() {
    assert_eq!(
        describe_url("postgres://u:secret@db:5432/x"),
        "postgres://db:5432/x"
    );
}
