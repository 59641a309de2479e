//! The `image-chat-server` binary as a child process: started with flags and environment
//! variables, its bound address read from the one line it prints on stdout, its stderr (the
//! logs) collected when asked for, and killed when dropped so no server outlives its test.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running server process.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// `https` when it serves TLS.
    pub scheme: String,
    logs: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `image-chat-server serve` with `args` on 127.0.0.1:0, its database in `dir`.
    /// `capture_logs`: keep stderr (readable with [`ServerProcess::logs`]); otherwise inherited.
    pub fn serve(
        dir: &std::path::Path,
        args: &[&std::ffi::OsStr],
        envs: &[(&str, &str)],
        capture_logs: bool,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_image-chat-server"));
        command
            .arg("serve")
            .args(args)
            .env("IMAGE_CHAT_LISTEN", "127.0.0.1:0")
            .env("IMAGE_CHAT_DATABASE", dir.join("image-chat.db"))
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if capture_logs {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let logs = Arc::clone(&logs);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    logs.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let rest = line
            .trim()
            .strip_prefix("image-chat-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        let (scheme, addr) = rest.split_once("://").unwrap();
        Self {
            addr: addr.parse().unwrap(),
            scheme: scheme.to_owned(),
            child,
            logs,
        }
    }

    /// What the server has logged so far (with `capture_logs`).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Sends `signal` (`HUP`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
