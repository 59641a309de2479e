//! The server under test: spawned by the load generator (the `image-chat-server` binary on
//! 127.0.0.1 with a SQLite file in a temp dir, restartable on the same address; with `--tls`,
//! serving wss:// with a certificate made in that dir) or attached to (an address and a pid).
//! Memory and CPU come from `/proc/<pid>`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::client::Endpoint;
use crate::peer::Protocol;
use crate::tls::ServerTls;

/// Linux `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (100 on every mainstream
/// architecture).
const TICKS_PER_SEC: f64 = 100.0;

/// How to get a server.
#[derive(Clone, Debug)]
pub enum Target {
    /// Spawn this binary with these extra `serve` flags.
    Spawn {
        /// The `image-chat-server` binary.
        bin: PathBuf,
        /// Extra flags (batching, limits…).
        args: Vec<String>,
        /// Serve wss:// with a self-signed certificate made for the run (`--tls`).
        tls: bool,
    },
    /// Spawn a peer server (`bench/peers`): `bin args… --listen 127.0.0.1:0`; it prints
    /// `… listening on http://ADDR` as its first line, like image-chat.
    Peer {
        /// The wire it speaks.
        protocol: Protocol,
        /// Its program (e.g. `node`, or a built peer binary).
        bin: PathBuf,
        /// Its arguments before `--listen` (e.g. the script).
        args: Vec<String>,
    },
    /// Use a running server.
    Attach {
        /// Its address (must be loopback).
        addr: SocketAddr,
        /// Its pid, for `/proc`.
        pid: u32,
    },
}

/// A server in use.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The wire it speaks.
    pub protocol: Protocol,
    pid: u32,
    child: Option<Child>,
    target: Target,
    /// Holds the database (and the TLS certificate) while we run.
    dir: Option<tempfile::TempDir>,
    /// The certificate it serves wss:// with, if it does.
    tls: Option<ServerTls>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Server flags that lift the abuse limits for a load test from one address.
const LOAD_TEST_LIMITS: &[&str] = &[
    "--max-connections-per-ip=0",
    "--max-connections-per-image=0",
    "--ip-ops-per-sec=0",
    "--ops-per-sec=0",
    "--bytes-per-sec=0",
    "--ip-bytes-per-sec=0",
    "--max-viewers-per-ip-per-image=0",
    "--counted-anonymous-per-ip=0",
    "--max-connections=0",
    "--max-chats-per-image=0",
    "--max-comments-per-thread=0",
    "--max-bytes-per-image=0",
    "--max-bytes-per-tenant=0",
    "--max-bytes-total=0",
    "--api-requests-per-sec=0",
];

/// Spawns a peer and reads its address from its first line.
fn spawn_peer(bin: &Path, args: &[String]) -> Result<(Child, SocketAddr), String> {
    let mut child = Command::new(bin)
        .args(args)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let addr = first_line_addr(&mut child);
    match addr {
        Ok(addr) => Ok((child, addr)),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// The address in a server's start-up line (`… listening on http://ADDR`, or `https://` when
/// it serves TLS).
fn first_line_addr(child: &mut Child) -> Result<SocketAddr, String> {
    let Some(stdout) = child.stdout.take() else {
        return Err("no stdout".into());
    };
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    read.ok()
        .and_then(|_| addr_in_line(&line))
        .ok_or_else(|| format!("server did not start (first line: {line:?})"))
}

fn addr_in_line(line: &str) -> Option<SocketAddr> {
    let (_, url) = line.trim().split_once("listening on ")?;
    let addr = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    addr.parse().ok()
}

fn spawn_on(
    bin: &Path,
    args: &[String],
    tls: Option<&ServerTls>,
    listen: &str,
    db: &Path,
) -> Result<(Child, SocketAddr), String> {
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--database")
        .arg(db);
    if let Some(tls) = tls {
        command
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key);
    }
    let mut child = command
        // Every load client comes from 127.0.0.1 and one image may hold thousands of them and
        // of their discussions: lift the per-address, per-image and rate limits (they protect a
        // public server, not a benchmark). Later `args` may set them again.
        .args(LOAD_TEST_LIMITS)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    match first_line_addr(&mut child) {
        Ok(addr) => Ok((child, addr)),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

impl Server {
    /// Starts (or attaches to) the server.
    pub fn start(target: &Target) -> Result<Self, String> {
        match target {
            Target::Spawn { bin, args, tls } => {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let db = dir.path().join("loadgen.db");
                let tls = if *tls {
                    Some(ServerTls::generate(dir.path()).map_err(|e| e.to_string())?)
                } else {
                    None
                };
                let (child, addr) = spawn_on(bin, args, tls.as_ref(), "127.0.0.1:0", &db)?;
                Ok(Self {
                    addr,
                    protocol: Protocol::ImageChat,
                    pid: child.id(),
                    child: Some(child),
                    target: target.clone(),
                    dir: Some(dir),
                    tls,
                })
            }
            Target::Peer {
                protocol,
                bin,
                args,
            } => {
                let (child, addr) = spawn_peer(bin, args)?;
                Ok(Self {
                    addr,
                    protocol: *protocol,
                    pid: child.id(),
                    child: Some(child),
                    target: target.clone(),
                    dir: None,
                    tls: None,
                })
            }
            Target::Attach { addr, pid } => {
                if !addr.ip().is_loopback() {
                    return Err(format!("{addr} is not a loopback address"));
                }
                Ok(Self {
                    addr: *addr,
                    protocol: Protocol::ImageChat,
                    pid: *pid,
                    child: None,
                    target: target.clone(),
                    dir: None,
                    tls: None,
                })
            }
        }
    }

    /// Where its clients connect (with the TLS setup that trusts its certificate, if any).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.addr,
            tls: self.tls.as_ref().map(|tls| Arc::clone(&tls.client)),
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGTERM (graceful shutdown: clients get 1012) and waits for the process to exit.
    pub fn stop_gracefully(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err("cannot restart an attached server".into());
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        child.wait().map_err(|e| e.to_string())?;
        self.child = None;
        Ok(())
    }

    /// Another server on this one's database (a second node of a cluster), spawned with `args`
    /// (which must name the shared broker, e.g. `--redis-url`) and this one's certificate, if
    /// any. This server must outlive it.
    pub fn spawn_sibling(&self, args: &[String]) -> Result<Server, String> {
        let (Target::Spawn { bin, .. }, Some(dir)) = (&self.target, &self.dir) else {
            return Err("only a spawned server has a database to share".into());
        };
        let db = dir.path().join("loadgen.db");
        let (child, addr) = spawn_on(bin, args, self.tls.as_ref(), "127.0.0.1:0", &db)?;
        Ok(Server {
            addr,
            protocol: Protocol::ImageChat,
            pid: child.id(),
            child: Some(child),
            target: Target::Spawn {
                bin: bin.clone(),
                args: args.to_vec(),
                tls: self.tls.is_some(),
            },
            dir: None,
            tls: self.tls.clone(),
        })
    }

    /// Starts the server again on the same address, database and certificate (its clients'
    /// TLS configuration stays valid).
    pub fn start_again(&mut self) -> Result<(), String> {
        let (Target::Spawn { bin, args, .. }, Some(dir)) = (&self.target, &self.dir) else {
            return Err("cannot restart an attached server".into());
        };
        let db = dir.path().join("loadgen.db");
        // The port was just freed; retry briefly in case the OS needs a moment.
        let mut last = String::new();
        for _ in 0..50 {
            match spawn_on(bin, args, self.tls.as_ref(), &self.addr.to_string(), &db) {
                Ok((child, addr)) => {
                    self.pid = child.id();
                    self.child = Some(child);
                    self.addr = addr;
                    return Ok(());
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(last)
    }

    /// Resident memory of the server, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// CPU seconds (user + system) the server has used.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.pid))
    }
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// This process's `VmRSS`, in KiB.
pub fn self_rss_kib() -> Option<u64> {
    proc_status_kib("/proc/self/status", "VmRSS:")
}

/// This process's CPU seconds.
pub fn self_cpu_secs() -> Option<f64> {
    cpu_secs("/proc/self/stat")
}

fn proc_status_kib(path: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn cpu_secs(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_address_of_a_plain_or_tls_server() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        for line in [
            "image-chat-server listening on http://127.0.0.1:4242\n",
            "image-chat-server listening on https://127.0.0.1:4242\n",
        ] {
            assert_eq!(addr_in_line(line), Some(addr), "{line}");
        }
        assert_eq!(addr_in_line("error: no"), None);
    }

    #[test]
    fn reads_its_own_memory_and_cpu() {
        assert!(self_rss_kib().is_some_and(|kib| kib > 0));
        assert!(self_cpu_secs().is_some());
    }
}
