//! What only the PostgreSQL store must show: secrets absent from every column, the data key
//! checked, the audit log append-only in the database itself, schema versions, several pools
//! (as several server processes would have) racing on one database without losing anything,
//! servers migrating one database at once, and a store that fails cleanly while the database
//! is down and works again, by itself, once it is back.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use zerotouch_core::{Instant, Nonce, SessionId};
use zerotouch_store::{
    AccountStore, AssociationAction, AssociationChange, AssociationStore, AttemptStore,
    ChangeOutcome, CounterKey, CounterScope, DeviceIdentity, DeviceStore, LockoutPolicy, NonceUse,
    PostgresOptions, PostgresStore, RegistrarCredential, RegistrarStore, SessionStore,
    StaticDataKey, StoreError,
};
use zerotouch_store_suite::postgres::{ClusterOptions, ThrowawayPostgres};

mod common;
use common::{
    PLAIN_SSID, T0, copied_passphrase_does_not_open, device, is_schema_99_too_new, one_audit_entry,
    only_the_creating_data_key_opens, two_networks, write_every_secret,
};

const FOREVER: Instant = Instant(u64::MAX >> 2);
const KEY: StaticDataKey = StaticDataKey([0x42; 32]);

/// A fresh database in the shared cluster: the cluster (held), the database's name and URL.
fn database() -> (Arc<ThrowawayPostgres>, String, String) {
    let pg = ThrowawayPostgres::shared();
    let url = pg.fresh_database();
    let name = url.rsplit('/').next().unwrap().to_string();
    (pg, name, url)
}

async fn open(url: &str) -> PostgresStore {
    PostgresStore::connect(url, &KEY, PostgresOptions::default())
        .await
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Every row of every table of the database as PostgreSQL's text output (`COPY … TO
/// STDOUT`: byte strings in lower-case hex after `\x`, text as it is).
fn every_row(pg: &ThrowawayPostgres, db: &str) -> String {
    let tables = pg
        .psql(
            db,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        )
        .unwrap();
    let mut all = String::new();
    for table in tables.lines() {
        all.push_str(&pg.psql(db, &format!("COPY {table} TO STDOUT")).unwrap());
        all.push('\n');
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_plaintext_in_any_column() {
    let (pg, db, url) = database();
    let s = open(&url).await;
    let mut secrets = write_every_secret(&s).await;
    secrets.push(("data key", KEY.0.to_vec()));
    // None of it is in any column, as text or as bytes.
    let rows = every_row(&pg, &db);
    assert!(
        rows.contains(&hex(PLAIN_SSID)) && rows.contains("ABCD"),
        "the test can see plain columns"
    );
    for (what, needle) in &secrets {
        assert!(!rows.contains(&hex(needle)), "{what} found as bytes");
        let text = String::from_utf8_lossy(needle);
        assert!(!rows.contains(text.as_ref()), "{what} found as text");
    }
}

#[tokio::test]
async fn opening_with_another_data_key_is_refused() {
    let (_pg, _db, url) = database();
    only_the_creating_data_key_opens(|key| {
        let url = url.clone();
        async move { PostgresStore::connect(&url, &key, PostgresOptions::default()).await }
    })
    .await;
}

#[tokio::test]
async fn sealed_value_copied_to_another_row_does_not_open() {
    let (pg, db, url) = database();
    let s = open(&url).await;
    let a = two_networks(&s).await;
    pg.psql(
        &db,
        "UPDATE networks SET passphrase_sealed = \
         (SELECT passphrase_sealed FROM networks WHERE ssid = 'one'::bytea) \
         WHERE ssid = 'two'::bytea",
    )
    .unwrap();
    copied_passphrase_does_not_open(&s, a).await;
}

#[tokio::test]
async fn audit_log_refuses_update_delete_and_truncate_in_the_database() {
    let (pg, db, url) = database();
    let s = open(&url).await;
    one_audit_entry(&s).await;
    for sql in [
        "UPDATE association_audit SET account_id = 99",
        "UPDATE association_audit SET account_id = 99 WHERE seq < 0",
        "DELETE FROM association_audit",
        "TRUNCATE association_audit",
    ] {
        let err = pg.psql(&db, sql).unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn schema_version_is_recorded_in_schema_migrations() {
    let (pg, db, url) = database();
    drop(open(&url).await);
    drop(open(&url).await);
    assert_eq!(
        pg.psql(
            &db,
            "SELECT string_agg(version::text, ',') FROM schema_migrations"
        )
        .unwrap(),
        "1"
    );
}

#[tokio::test]
async fn database_from_a_newer_schema_is_refused() {
    let (pg, db, url) = database();
    drop(open(&url).await);
    pg.psql(&db, "INSERT INTO schema_migrations (version) VALUES (99)")
        .unwrap();
    let err = PostgresStore::connect(&url, &KEY, PostgresOptions::default())
        .await
        .unwrap_err();
    is_schema_99_too_new(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_migrating_one_empty_database_at_once_all_succeed() {
    let (pg, db, url) = database();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresStore::connect(&url, &KEY, PostgresOptions::default()).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        pg.psql(&db, "SELECT count(*) FROM schema_migrations")
            .unwrap(),
        "1"
    );
    // One key check, which every one of them accepts.
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM meta").unwrap(), "1");
    for s in &stores {
        s.create_account("x", T0).await.unwrap();
    }
}

/// Two stores on one database: two pools, as two server processes would have.
async fn two_pools() -> (Arc<ThrowawayPostgres>, PostgresStore, PostgresStore) {
    let (pg, _db, url) = database();
    let (a, b) = (open(&url).await, open(&url).await);
    (pg, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_consuming_one_nonce_at_once_exactly_one_wins() {
    let (_pg, a, b) = two_pools().await;
    let session = SessionId([7; 16]);
    for n in 0..50u8 {
        a.issue_nonce(Nonce([n; 16]), session, FOREVER)
            .await
            .unwrap();
    }
    let race = |s: PostgresStore| {
        tokio::spawn(async move {
            let mut wins = Vec::new();
            for n in 0..50u8 {
                wins.push(
                    s.consume_nonce(Nonce([n; 16]), session, T0).await.unwrap()
                        == NonceUse::Consumed,
                );
            }
            wins
        })
    };
    let (wins_a, wins_b) = (race(a.clone()), race(b.clone()));
    let (wins_a, wins_b) = (wins_a.await.unwrap(), wins_b.await.unwrap());
    for n in 0..50 {
        assert!(
            wins_a[n] ^ wins_b[n],
            "nonce {n}: {} and {}",
            wins_a[n],
            wins_b[n]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn increments_and_failures_from_two_pools_are_never_lost() {
    let (_pg, a, b) = two_pools().await;
    let counter = CounterKey::new(CounterScope::Signatures, b"shared".to_vec());
    let failures = CounterKey::new(CounterScope::PinAttempts, b"shared".to_vec());
    let policy = LockoutPolicy {
        max_failures: 1_000_000,
        lockout: Duration::from_secs(60),
    };
    const TASKS: u64 = 8;
    const EACH: u64 = 25;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (counter, failures) = (counter.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                s.increment_counter(counter.clone(), T0, FOREVER)
                    .await
                    .unwrap();
                s.record_failure(failures.clone(), policy, T0)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        a.increment_counter(counter, T0, FOREVER).await.unwrap(),
        TASKS * EACH + 1
    );
    assert_eq!(
        u64::from(b.attempt_state(failures).await.unwrap().failures),
        TASKS * EACH
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_change_to_one_device_from_two_pools_is_applied_once() {
    let (_pg, a, b) = two_pools().await;
    let account = a.create_account("alice", T0).await.unwrap();
    let r = a
        .add_registrar("app", RegistrarCredential::ApiTokenHash([1; 32]), T0)
        .await
        .unwrap();
    let devices: Vec<_> = (0..20).map(device).collect();
    a.import_devices(devices.clone()).await.unwrap();
    let apply = |s: PostgresStore| {
        let devices = devices.clone();
        tokio::spawn(async move {
            let mut applied = Vec::new();
            for d in devices {
                let outcome = s
                    .apply_association_change(AssociationChange {
                        action: AssociationAction::Add,
                        device: d.key_id,
                        account,
                        registrar: r,
                        label: None,
                        at: T0,
                    })
                    .await
                    .unwrap();
                applied.push(matches!(outcome, ChangeOutcome::Applied { .. }));
            }
            applied
        })
    };
    let (x, y) = (apply(a.clone()), apply(b.clone()));
    let (x, y) = (x.await.unwrap(), y.await.unwrap());
    for n in 0..20 {
        assert!(x[n] ^ y[n], "device {n}: {} and {}", x[n], y[n]);
    }
    let log = a.audit_log(0, 100).await.unwrap();
    assert_eq!(log.len(), 20);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// A connection of the test's own, beside the store's pools.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

const INSERT_DEVICE: &str = "INSERT INTO devices (key_id, identity_kind, identity, device_type, \
     serial, product_number, pin_sealed, secret_sealed, blocked, created_at) \
     VALUES ($1, 2, $2, 7, $3, 'ZT1', NULL, NULL, FALSE, $4)";

/// Inserts `device(n)` as the store would, in `tx`.
async fn insert_device(tx: &tokio_postgres::Transaction<'_>, n: u32) {
    let d = device(n);
    let DeviceIdentity::PublicKey(spki) = &d.identity else {
        unreachable!()
    };
    tx.execute(
        INSERT_DEVICE,
        &[
            &d.key_id.as_bytes().as_slice(),
            spki,
            &i64::from(n),
            &(T0.0 as i64),
        ],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadlock_victim_is_run_again_and_the_caller_never_sees_it() {
    let (_pg, _db, url) = database();
    let s = open(&url).await;
    // Another process inserts device 2 and keeps its transaction open.
    let mut other = raw_client(&url).await;
    let tx = other.transaction().await.unwrap();
    insert_device(&tx, 2).await;
    // The store's import inserts device 1, then waits for device 2.
    let import = tokio::spawn({
        let s = s.clone();
        async move { s.import_devices(vec![device(1), device(2)]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The other process now waits for device 1: a deadlock. The store's transaction has
    // waited longer, so PostgreSQL's check (after deadlock_timeout, 1 s) aborts it.
    insert_device(&tx, 1).await;
    tx.commit().await.unwrap();
    // Run again, the import finds both devices, identical, committed by the other process.
    let report = import.await.unwrap().unwrap();
    assert_eq!((report.added, report.unchanged), (0, 2));
    assert_eq!(
        s.device(&device(1).key_id).await.unwrap().unwrap(),
        device(1)
    );
}

#[tokio::test]
async fn connecting_to_a_database_that_is_not_there_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PostgresStore::connect(
        &format!("postgres://zt@127.0.0.1:{port}/none"),
        &KEY,
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_fails_cleanly_while_the_database_is_down_and_recovers_after() {
    // A cluster of its own: this test kills it.
    let pg = tokio::task::spawn_blocking(|| ThrowawayPostgres::start(ClusterOptions::default()))
        .await
        .unwrap();
    let pg = Arc::new(pg);
    let url = pg.create_database("zt");
    let s = open(&url).await;
    let alice = s.create_account("alice", T0).await.unwrap();
    // Several idle connections in the pool, all of which the crash breaks.
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.account(alice).await })
        })
        .collect();
    for b in busy {
        b.await.unwrap().unwrap();
    }

    s.import_devices(vec![device(1)]).await.unwrap();

    for (round, crash) in [true, false].into_iter().enumerate() {
        // An operation in flight when the server goes: it waits for a row another
        // connection holds locked.
        let mut other = raw_client(&url).await;
        let tx = other.transaction().await.unwrap();
        tx.execute(
            "SELECT 1 FROM devices WHERE key_id = $1 FOR UPDATE",
            &[&device(1).key_id.as_bytes().as_slice()],
        )
        .await
        .unwrap();
        let in_flight = tokio::spawn({
            let s = s.clone();
            async move { s.set_blocked(&device(1).key_id, true).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !in_flight.is_finished(),
            "round {round}: the row lock holds it"
        );
        let pg2 = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || if crash { pg2.kill() } else { pg2.stop() })
            .await
            .unwrap();
        // Either the change fails as Unavailable, or (after a SIGKILL, when the lock holder's
        // backend noticed its postmaster's death and exited before this one did) it committed
        // and says so; then it must be there after the restart. Never anything else.
        let committed = match in_flight.await.unwrap() {
            Ok(()) => {
                assert!(
                    crash,
                    "round {round}: a fast shutdown aborts the waiting change"
                );
                true
            }
            Err(err) => {
                assert!(
                    matches!(err, StoreError::Unavailable(_)),
                    "round {round}: {err:?}"
                );
                false
            }
        };
        drop(tx);
        drop(other);
        for _ in 0..3 {
            let err = s.create_account("while down", T0).await.unwrap_err();
            assert!(
                matches!(err, StoreError::Unavailable(_)),
                "round {round}: {err:?}"
            );
        }
        let pg2 = Arc::clone(&pg);
        tokio::task::spawn_blocking(move || pg2.restart())
            .await
            .unwrap();
        // The very next operation works: no stale connection is handed out.
        let bob = s.create_account("bob", T0).await.unwrap();
        assert_eq!(s.account(alice).await.unwrap().unwrap().name, "alice");
        assert_eq!(s.account(bob).await.unwrap().unwrap().name, "bob");
        assert_eq!(
            s.device(&device(1).key_id).await.unwrap().unwrap().blocked,
            committed,
            "round {round}: the change is stored exactly when it was reported committed"
        );
        if committed {
            s.set_blocked(&device(1).key_id, false).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_frozen_session_is_waited_for_seconds_not_forever() {
    // Another session (standing in for a server process frozen mid-transaction) holds a
    // device's row lock and sleeps; a change to that device gives up after lock_timeout
    // with an error instead of waiting, and taking a pool permit, until the lock is freed.
    let (pg, name, url) = database();
    let store = open(&url).await;
    let d = device(1);
    store.import_devices(vec![d.clone()]).await.unwrap();
    let key = hex(d.key_id.as_bytes());
    let mut holder = pg
        .psql_command(
            &name,
            &format!(
                "BEGIN; SELECT 1 FROM devices WHERE key_id = '\\x{key}' FOR UPDATE; \
                 SELECT pg_sleep(60); COMMIT;"
            ),
        )
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pg
        .psql(
            &name,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
        )
        .unwrap()
        == "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock holder never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = std::time::Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(30), store.set_blocked(&d.key_id, true))
        .await
        .expect("the change waited on the lock for 30 s");
    assert!(waited.is_err(), "the change went through a held lock");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let _ = holder.kill();
    let _ = holder.wait();
}
