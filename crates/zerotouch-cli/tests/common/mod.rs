//! What the command-line tests share: running the binary, a whole deployment made with it
//! (on the embedded store or on PostgreSQL), and `serve` as a child process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use assert_cmd::Command;
use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_zerotouch")
}

/// `zerotouch --data DATA` with nothing from the environment.
pub fn zt(data: &Path) -> Command {
    zt_on(data, None)
}

/// `zerotouch --data DATA [--store STORE]` with nothing from the environment.
pub fn zt_on(data: &Path, store: Option<&str>) -> Command {
    let mut c = Command::new(bin());
    c.arg("--data")
        .arg(data)
        .env_remove("ZEROTOUCH_DATA")
        .env_remove("ZEROTOUCH_STORE")
        .env_remove("ZEROTOUCH_STORE_CA");
    if let Some(store) = store {
        c.arg("--store").arg(store);
    }
    c.timeout(std::time::Duration::from_secs(120));
    c
}

/// Runs `zerotouch --json …`, expects success, returns the JSON.
pub fn json(data: &Path, args: &[&str]) -> Value {
    json_with_stdin(data, args, None)
}

pub fn json_with_stdin(data: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    json_on(data, None, args, stdin)
}

/// Runs `zerotouch --json …` on `store`, with `stdin`, expects success, returns the JSON.
pub fn json_on(data: &Path, store: Option<&str>, args: &[&str], stdin: Option<&str>) -> Value {
    let mut c = zt_on(data, store);
    c.arg("--json").args(args);
    if let Some(s) = stdin {
        c.write_stdin(s);
    }
    let out = c.assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Runs `zerotouch ARGS` (ARGS split at spaces, then `extra`), expects a failure whose
/// message contains `why`.
pub fn refused(data: &Path, args: &str, extra: &[&str], why: &str) {
    zt(data)
        .args(args.split_whitespace())
        .args(extra)
        .assert()
        .failure()
        .stderr(predicates::str::contains(why));
}

/// Borrowed views of owned arguments.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `factory batch` with the deployment's CA, factory key and import key, 1000 PIN hash
/// iterations (fast for tests), `spec` (split at spaces) and `--out OUT`.
pub fn batch_args(work: &Path, data: &Path, spec: &str, out: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "factory".into(),
        "batch".into(),
        "--ca".into(),
        s(&work.join("manufacturer")).into(),
        "--signing-key".into(),
        s(&work.join("factory.key.pem")).into(),
        "--import-key".into(),
        s(&data.join("manifest-import.pub.json")).into(),
        "--pin-iterations".into(),
        "1000".into(),
        "--out".into(),
        s(out).into(),
    ];
    args.extend(spec.split_whitespace().map(String::from));
    args
}

/// A data directory with keys, a trusted manufacturer CA, a factory key, a pinned-key
/// bundle, an imported batch of `count` devices, an account with a network and a registrar
/// with an API token.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub account: i64,
    /// `--store` of every command (`None`: the embedded store).
    pub store: Option<String>,
}

pub const TOKEN: &str = "shop-token-0123456789";
pub const PASSPHRASE: &str = "correct horse battery staple";

impl Deployment {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn new(count: u32) -> Deployment {
        Deployment::on(count, None)
    }

    /// The deployment with its state at `store` (a PostgreSQL URL), or embedded.
    pub fn on(count: u32, store: Option<&str>) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let p = |n: &str| dir.path().join(n);
        let json = |data: &Path, args: &[&str]| json_on(data, store, args, None);
        let json_with_stdin =
            |data: &Path, args: &[&str], stdin: Option<&str>| json_on(data, store, args, stdin);
        json(&data, &["init", "--server-name", "localhost"]);
        json(
            &data,
            &[
                "ca",
                "create",
                "--name",
                "Acme devices",
                "--out",
                s(&p("manufacturer")),
            ],
        );
        json(
            &data,
            &[
                "ca",
                "trust",
                "--role",
                "devices",
                s(&p("manufacturer.crt.pem")),
            ],
        );
        json(&data, &["keys", "create", "--role", "setup"]);
        json(
            &data,
            &[
                "keys",
                "create",
                "--role",
                "revocation",
                "--algorithm",
                "ed25519",
            ],
        );
        json(
            &data,
            &[
                "keys",
                "create",
                "--role",
                "factory-manifest",
                "--out",
                s(&p("factory.key.pem")),
            ],
        );
        json(
            &data,
            &[
                "keys",
                "export-bundle",
                "--header",
                s(&p("pinned.h")),
                "--cbor",
                s(&p("pinned.cbor")),
            ],
        );
        let spec = format!(
            "--device-type 7 --first-serial 100 --count {count} --product PLUG01 --device-secrets --label-codes"
        );
        let args = batch_args(dir.path(), &data, &spec, &p("batch"));
        json(&data, &strs(&args));
        let imported = json(&data, &["devices", "import", s(&p("batch/manifest.cbor"))]);
        assert_eq!(imported["added"], count);
        let account = json(&data, &["accounts", "add", "--name", "owner"])["account"]
            .as_i64()
            .unwrap();
        json_with_stdin(
            &data,
            &[
                "networks",
                "add",
                "--account",
                &account.to_string(),
                "--ssid",
                "home",
                "--passphrase-file",
                "-",
            ],
            Some(PASSPHRASE),
        );
        json_with_stdin(
            &data,
            &["registrars", "add", "--name", "shop", "--token-file", "-"],
            Some(TOKEN),
        );
        Deployment {
            dir,
            data,
            account,
            store: store.map(String::from),
        }
    }

    /// `register --server ADDR --token-file TOKEN --account ACCOUNT` (the label follows).
    pub fn register_args(&self, server: &Server, token: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "register",
            "--server",
            &server.addr,
            "--token-file",
            s(token),
        ]
        .map(String::from)
        .to_vec();
        args.extend(["--account".to_string(), self.account.to_string()]);
        args
    }

    /// `simulate --server ADDR --batch BATCH --bundle BUNDLE` and `extra` (split at spaces).
    pub fn simulate_args(&self, server: &Server, extra: &str) -> Vec<String> {
        let batch = self.path("batch");
        let bundle = self.path("pinned.cbor");
        let mut args: Vec<String> = [
            "simulate",
            "--server",
            &server.addr,
            "--batch",
            s(&batch),
            "--bundle",
            s(&bundle),
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.split_whitespace().map(String::from));
        args
    }

    /// A copy of the data directory at `name` beside it (`cp -a`): what a second server
    /// process on the same PostgreSQL gets (the same keys, data key and TLS identity).
    pub fn copy_data_dir(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(&self.data)
            .arg(&to)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -a {} {}", self.data.display(), to.display());
        to
    }

    /// `serve` on this deployment's store from `data` (its own or a copy) with `extra`.
    pub fn serve(&self, data: &Path, extra: &[&str]) -> Server {
        Server::start_on(data, self.store.as_deref(), extra)
    }

    /// `zerotouch --json ARGS` on this deployment's data directory and store.
    pub fn json(&self, args: &[&str]) -> Value {
        json_on(&self.data, self.store.as_deref(), args, None)
    }

    pub fn entries(&self) -> Vec<Value> {
        serde_json::from_str(&std::fs::read_to_string(self.path("batch/devices.json")).unwrap())
            .unwrap()
    }
}

/// A `zerotouch serve` child process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The first line it printed (JSON).
    pub first: Value,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// `serve --listen 127.0.0.1:0` with `extra` arguments.
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Server::start_on(data, None, extra)
    }

    /// `serve --listen 127.0.0.1:0` on `store` with `extra` arguments.
    pub fn start_on(data: &Path, store: Option<&str>, extra: &[&str]) -> Server {
        let mut command = std::process::Command::new(bin());
        command.arg("--data").arg(data);
        if let Some(store) = store {
            command.arg("--store").arg(store);
        }
        let mut child = command
            .args([
                "--json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--exit-after",
                "300",
            ])
            .args(extra)
            .env_remove("ZEROTOUCH_DATA")
            .env_remove("ZEROTOUCH_STORE")
            .env_remove("ZEROTOUCH_STORE_CA")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("serve printed {line:?}: {e}"));
        Server {
            child,
            addr: v["listen"].as_str().unwrap().to_string(),
            first: v,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
