//! A cluster of real processes for fault and operations tests: `mpcstats init` into a
//! temporary directory, then the coordinator, the three parties, the notary and the api each
//! started from the built binary, signalled (SIGKILL, SIGSTOP, SIGTERM …) and restarted by
//! the test. Each role appends its stderr to `role<slot>.log`; a failing test prints the tail
//! of every log. Holds no assertions about the protocol: only process control.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mpcstats::config::Cluster;
use mpcstats::roles::client::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_mpcstats");

/// Slots: the coordinator, parties 0–2, the notary, the api.
pub const COORDINATOR: usize = 0;
pub const NOTARY: usize = 4;
pub const API: usize = 5;
const SLOTS: usize = 6;
/// Generous bound on a role's exit after a signal (a drain takes at most 10 + 15 s).
pub const NEVER_HANGS: Duration = Duration::from_secs(90);

pub fn party(i: usize) -> usize {
    1 + i
}

pub fn role_name(slot: usize) -> String {
    match slot {
        COORDINATOR => "the coordinator".into(),
        NOTARY => "the notary".into(),
        API => "the api".into(),
        s => format!("party {}", s - 1),
    }
}

pub fn free_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub struct Procs {
    pub dir: tempfile::TempDir,
    children: Vec<Option<Child>>,
    /// Extra arguments of the notary (its test roots and name resolution).
    pub notary_args: Vec<String>,
    /// Extra global flags of every role (`--log-format json`).
    pub flags: Vec<String>,
    /// Where the api serves HTTP.
    pub api: SocketAddr,
}

impl Procs {
    /// `mpcstats init` with fresh loopback addresses, then `edit` applied to the cluster
    /// file. Nothing is started.
    pub fn init(edit: impl FnOnce(&mut Cluster)) -> Procs {
        let dir = tempfile::tempdir().unwrap();
        let mut init = Command::new(BIN);
        init.args(["init", "--out"]).arg(dir.path());
        for _ in 0..3 {
            init.args(["--party", &free_addr().to_string()]);
        }
        init.args(["--coordinator", &free_addr().to_string()]);
        init.args(["--notary", &free_addr().to_string()]);
        let out = init.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join("cluster.toml");
        let mut cluster = Cluster::load(&file).unwrap();
        edit(&mut cluster);
        cluster.save(&file).unwrap();
        Procs {
            dir,
            children: (0..SLOTS).map(|_| None).collect(),
            notary_args: Vec::new(),
            flags: Vec::new(),
            api: std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap(),
        }
    }

    /// The coordinator and the three parties of a fresh cluster, running.
    pub fn start() -> Procs {
        let mut p = Procs::init(|_| {});
        for slot in 0..4 {
            p.spawn(slot);
        }
        p
    }

    pub fn cluster_file(&self) -> PathBuf {
        self.dir.path().join("cluster.toml")
    }

    pub fn cluster(&self) -> Cluster {
        Cluster::load(&self.cluster_file()).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log_name(slot: usize) -> String {
        format!("role{slot}.log")
    }

    /// What the role in `slot` has logged so far.
    pub fn log(&self, slot: usize) -> String {
        std::fs::read_to_string(self.path(&Self::log_name(slot))).unwrap_or_default()
    }

    pub fn spawn(&mut self, slot: usize) {
        let mut cmd = Command::new(BIN);
        cmd.arg("--cluster").arg(self.cluster_file());
        cmd.args(&self.flags);
        match slot {
            COORDINATOR => {
                cmd.arg("coordinator");
            }
            NOTARY => {
                cmd.arg("notary").args(&self.notary_args);
            }
            API => {
                cmd.args(["api", "--listen", &self.api.to_string()]);
            }
            s => {
                cmd.args(["party", "--id", &(s - 1).to_string()]);
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&Self::log_name(slot)))
            .unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        self.children[slot] = Some(cmd.spawn().expect("start a role"));
    }

    /// SIGKILL: no goodbye, no flush beyond what the role made durable itself.
    pub fn kill(&mut self, slot: usize) {
        if let Some(mut c) = self.children[slot].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn pid(&self, slot: usize) -> u32 {
        self.children[slot].as_ref().expect("running").id()
    }

    /// Sends `signal` (a name for kill(1): STOP, CONT, TERM) to the role in `slot`.
    pub fn signal(&self, slot: usize, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(slot).to_string())
            .status()
            .expect("kill(1) runs");
        assert!(ok.success(), "kill -{signal} {}", role_name(slot));
    }

    /// The peak resident memory (VmHWM) of the role in `slot` so far, in KiB.
    pub fn peak_rss_kib(&self, slot: usize) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(slot)))
            .expect("the role's /proc status");
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .expect("VmHWM in /proc status")
    }

    pub fn running(&self, slot: usize) -> bool {
        self.children[slot].is_some()
    }

    /// Waits for the role in `slot` to exit (at most [`NEVER_HANGS`]) and returns how.
    pub fn wait_exit(&mut self, slot: usize) -> ExitStatus {
        let child = self.children[slot].as_mut().expect("running");
        let deadline = Instant::now() + NEVER_HANGS;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.children[slot] = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {NEVER_HANGS:?} of its signal",
                role_name(slot)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for slot in 0..SLOTS {
            if self.children[slot].is_some() {
                // A stopped process must be continued to die promptly on some kernels.
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(self.pid(slot).to_string())
                    .status();
            }
            self.kill(slot);
        }
        // Kept for study when asked (MPCSTATS_TEST_LOGS=DIR).
        if let Some(keep) = std::env::var_os("MPCSTATS_TEST_LOGS") {
            let _ = std::fs::create_dir_all(&keep);
            for slot in 0..SLOTS {
                let name = Self::log_name(slot);
                let _ = std::fs::copy(self.path(&name), Path::new(&keep).join(name));
            }
        }
        // On failure, show what the roles logged.
        if std::thread::panicking() {
            for slot in 0..SLOTS {
                let log = self.log(slot);
                if log.is_empty() {
                    continue;
                }
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- {} log (last lines) ---", role_name(slot));
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A client of the cluster in `file`, retrying until the roles answer (at most 30 s).
pub async fn connect(file: &Path) -> Client {
    let cluster = Cluster::load(file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Client::connect(&cluster).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("cluster did not come up: {e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
