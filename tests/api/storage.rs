//! Storage rules checked directly against each database engine: SQLite
//! always, and PostgreSQL too when CONFAB_TEST_DATABASE_URL is set.

use std::collections::HashSet;
use std::time::Duration;

use confab::auth::Role;
use confab::store::messages::{MessageRange, NewMessage};
use confab::store::users::NewUser;
use confab::store::{now_millis, PoolSettings, Store};

use crate::helpers::TestSchema;

/// One database to run the checks on, kept alive for the test's length.
struct Database {
    name: &'static str,
    url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    _schema: Option<TestSchema>,
}

/// Returns SQLite in a temporary folder, and a fresh PostgreSQL schema when
/// the variable is set.
async fn databases() -> Vec<Database> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("confab.db").display()
    );
    let mut databases = vec![Database {
        name: "sqlite",
        url,
        _sqlite_dir: Some(dir),
        _schema: None,
    }];
    match TestSchema::create().await {
        Some(schema) => databases.push(Database {
            name: "postgres",
            url: schema.url.clone(),
            _sqlite_dir: None,
            _schema: Some(schema),
        }),
        None => eprintln!("PostgreSQL part skipped: CONFAB_TEST_DATABASE_URL is not set"),
    }
    databases
}

fn pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    }
}

async fn user(store: &Store, email: &str) -> i64 {
    let new = NewUser {
        email,
        display_name: email,
        password_hash: "not a real hash",
        role: Role::User,
        created_at: now_millis(),
    };
    store.create_user(new).await.unwrap().id
}

/// Connects to `database` and creates a user and a group with only that user.
async fn group_of_one(database: &Database) -> (Store, i64, i64) {
    let store = Store::connect(&database.url, &pool_settings())
        .await
        .unwrap();
    let owner = user(&store, "owner@example.test").await;
    let chat_id = store
        .create_group_chat(owner, "Team", &[], now_millis())
        .await
        .unwrap();
    (store, owner, chat_id)
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    for database in databases().await {
        let starts = (0..4).map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { Store::connect(&url, &pool_settings()).await })
        });
        for start in futures_util::future::join_all(starts).await {
            let store = start.unwrap();
            assert!(store.is_ok(), "{}: {:?}", database.name, store.err());
        }

        let store = Store::connect(&database.url, &pool_settings())
            .await
            .unwrap();
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let distinct: HashSet<i64> = versions.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            versions.len(),
            "{}: {versions:?}",
            database.name
        );
        let failed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(failed, 0, "{}", database.name);
        user(&store, "after-migration@example.test").await;
    }
}

#[tokio::test]
async fn message_ids_increase_and_page_exactly() {
    for database in databases().await {
        let (store, owner, chat_id) = group_of_one(&database).await;

        // Concurrent senders, all with the same timestamp: ids alone order them.
        let created_at = now_millis();
        let sends = (0..40).map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = format!("message {index}");
                let new = NewMessage {
                    chat_id,
                    sender_id: owner,
                    body: &body,
                    client_id: None,
                    created_at,
                };
                store.create_message(new).await.unwrap().0.id
            })
        });
        let mut sent: Vec<i64> = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        sent.sort_unstable();

        let mut seen: Vec<i64> = Vec::new();
        let mut after = 0;
        loop {
            let range = MessageRange {
                before: None,
                after: Some(after),
            };
            let page = store.list_messages(chat_id, range, 7).await.unwrap();
            let ids: Vec<i64> = page.items.iter().map(|message| message.id).collect();
            assert!(
                ids.windows(2).all(|pair| pair[0] < pair[1]),
                "{}",
                database.name
            );
            seen.extend(&ids);
            match ids.last() {
                Some(last) if page.has_more => after = *last,
                _ => break,
            }
        }
        assert_eq!(
            seen, sent,
            "{}: each message once, in id order",
            database.name
        );
    }
}

#[tokio::test]
async fn racing_client_ids_store_one_message() {
    for database in databases().await {
        let (store, owner, chat_id) = group_of_one(&database).await;

        let sends = (0..16).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = NewMessage {
                    chat_id,
                    sender_id: owner,
                    body: "once",
                    client_id: Some("retry-1"),
                    created_at: now_millis(),
                };
                store.create_message(new).await.unwrap()
            })
        });
        let results: Vec<_> = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let stored = results.iter().filter(|(_, created)| *created).count();
        assert_eq!(stored, 1, "{}: exactly one insert", database.name);
        let ids: HashSet<i64> = results.iter().map(|(message, _)| message.id).collect();
        assert_eq!(
            ids.len(),
            1,
            "{}: every caller gets the original",
            database.name
        );

        let page = store
            .list_messages(chat_id, MessageRange::default(), 50)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "{}", database.name);
    }
}
