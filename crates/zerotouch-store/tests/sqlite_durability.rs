//! What only a file-backed store must show: secrets absent from the raw file, the data key
//! checked, the audit log append-only at the database level, schema versions, several
//! processes writing at once, and no half-written transaction after a writer is killed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use zerotouch_core::{Instant, Nonce, SessionId};
use zerotouch_store::{
    AssociationStore, AttemptStore, CounterKey, CounterScope, DeviceStore, LocalKeyFile,
    SessionStore, SqliteOptions, SqliteStore, StoreError,
};

mod common;
use common::{
    PLAIN_SSID, T0, copied_passphrase_does_not_open, device, is_schema_99_too_new, one_audit_entry,
    only_the_creating_data_key_opens, two_networks, write_every_secret,
};

async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(
        dir.join("store.db"),
        &LocalKeyFile::new(dir.join("data.key")),
        SqliteOptions::default(),
    )
    .await
    .unwrap()
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("store.db")).unwrap()
}

/// Every byte of the database and its WAL.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("store.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_absent_from_the_raw_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let secrets = write_every_secret(&s).await;
    // None of it is in the file, before or after the WAL is checkpointed.
    for round in 0..2 {
        let bytes = database_bytes(dir.path());
        assert!(!bytes.is_empty());
        assert!(
            contains(&bytes, PLAIN_SSID),
            "the test can see plain columns"
        );
        for (what, needle) in &secrets {
            assert!(
                !contains(&bytes, needle),
                "{what} found in the database file (round {round})"
            );
        }
        let key = std::fs::read(dir.path().join("data.key")).unwrap();
        assert!(
            !contains(&bytes, &key),
            "data key found in the database file"
        );
        raw(dir.path())
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
}

#[tokio::test]
async fn wrong_data_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    only_the_creating_data_key_opens(|key| {
        let path = path.clone();
        async move { SqliteStore::open(&path, &key, SqliteOptions::default()).await }
    })
    .await;
}

#[tokio::test]
async fn key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("data.key");
    drop(open(dir.path()).await);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600,
        "a created key file is private"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SqliteStore::open(
        dir.path().join("store.db"),
        &LocalKeyFile::new(&key),
        SqliteOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::DataKey(_)), "{err:?}");
}

#[tokio::test]
async fn sealed_value_copied_to_another_row_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let a = two_networks(&s).await;
    raw(dir.path())
        .execute_batch(
            "UPDATE networks SET passphrase_sealed = \
             (SELECT passphrase_sealed FROM networks WHERE ssid = CAST('one' AS BLOB)) \
             WHERE ssid = CAST('two' AS BLOB);",
        )
        .unwrap();
    copied_passphrase_does_not_open(&s, a).await;
}

#[tokio::test]
async fn audit_log_rows_cannot_be_updated_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    one_audit_entry(&s).await;
    let db = raw(dir.path());
    for sql in [
        "UPDATE association_audit SET account_id = 99",
        "DELETE FROM association_audit",
    ] {
        let err = db.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn schema_version_and_wal_mode_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let db = raw(dir.path());
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, mode.as_str()), (1, "wal"));
}

#[tokio::test]
async fn database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    raw(dir.path())
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = SqliteStore::open(
        dir.path().join("store.db"),
        &LocalKeyFile::new(dir.path().join("data.key")),
        SqliteOptions::default(),
    )
    .await
    .unwrap_err();
    is_schema_99_too_new(&err);
}

// ---- several processes ----

const BATCH: u32 = 200;

fn spawn_worker(dir: &Path, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store_worker_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ZT_STORE_WORKER_DIR", dir)
        .env("ZT_STORE_WORKER_MODE", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test on its own: the child process the tests below start (and kill).
#[test]
#[ignore = "run as a child process by the multi-process tests"]
fn store_worker_process() {
    let dir = PathBuf::from(std::env::var_os("ZT_STORE_WORKER_DIR").expect("worker dir"));
    let mode = std::env::var("ZT_STORE_WORKER_MODE").expect("worker mode");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = open(&dir).await;
        println!("open");
        match mode.as_str() {
            // Imports batches of BATCH devices forever, announcing each commit; the parent kills
            // it at some point, most likely inside a transaction.
            "batches" => {
                let start: u32 = s
                    .devices_with_key_prefix(&[], usize::MAX)
                    .await
                    .unwrap()
                    .len() as u32;
                for b in 0.. {
                    let base = start + b * BATCH;
                    let batch = (base..base + BATCH).map(device).collect();
                    s.import_devices(batch).await.unwrap();
                    println!("committed {}", base + BATCH);
                }
            }
            "increments" => {
                let key = CounterKey::new(CounterScope::Signatures, b"shared".to_vec());
                for _ in 0..150 {
                    s.increment_counter(key.clone(), T0, Instant(u64::MAX >> 2))
                        .await
                        .unwrap();
                    s.consume_nonce(Nonce([1; 16]), SessionId([1; 16]), T0)
                        .await
                        .unwrap();
                }
                println!("done");
            }
            other => panic!("unknown mode {other}"),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_leaves_no_half_written_batch() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let mut acknowledged = 0u32;
    for round in 0..3u64 {
        let mut child = spawn_worker(dir.path(), "batches");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it commit a few batches, then kill it at a moment that varies per round.
        let mut commits = 0;
        while commits < 3 {
            let line = lines.next().expect("worker output").unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                acknowledged = n.parse().unwrap();
                commits += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(3 + round * 7));
        child.kill().unwrap(); // SIGKILL: no destructor, no rollback, no checkpoint runs.
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ") {
                acknowledged = n.parse().unwrap();
            }
        }

        let db = raw(dir.path());
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(db);
        let s = open(dir.path()).await;
        let count = s
            .devices_with_key_prefix(&[], usize::MAX)
            .await
            .unwrap()
            .len() as u32;
        assert_eq!(
            count % BATCH,
            0,
            "round {round}: {count} devices is a half-written batch"
        );
        assert!(
            count >= acknowledged,
            "round {round}: a committed batch was lost"
        );
        assert!(count <= acknowledged + BATCH, "round {round}");
        assert_eq!(
            s.device(&device(count - 1).key_id).await.unwrap().unwrap(),
            device(count - 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_in_two_processes_wait_for_each_other_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.issue_nonce(Nonce([1; 16]), SessionId([1; 16]), Instant(u64::MAX >> 2))
        .await
        .unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| spawn_worker(dir.path(), "increments"))
        .collect();
    for mut child in children {
        let out = BufReader::new(child.stdout.take().unwrap());
        let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
        assert!(
            child.wait().unwrap().success(),
            "a worker failed: {lines:?}"
        );
        assert!(lines.iter().any(|l| l == "done"), "{lines:?}");
    }
    let key = CounterKey::new(CounterScope::Signatures, b"shared".to_vec());
    assert_eq!(
        s.increment_counter(key, T0, Instant(u64::MAX >> 2))
            .await
            .unwrap(),
        301,
        "2 processes × 150 increments, then ours"
    );
}
