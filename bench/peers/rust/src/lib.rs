//! What the benchmark peers share: the listen address flag and the start-up line the load
//! generator reads (`… listening on http://ADDR`, as `image-chat-server` prints it).

use std::net::SocketAddr;

/// The address from `--listen ADDR` (default `127.0.0.1:0`: a free port).
pub fn listen_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:0".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => addr = args.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    addr.parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))
}

/// Prints the start-up line the load generator waits for.
pub fn announce(name: &str, addr: SocketAddr) {
    println!("{name} listening on http://{addr}");
}
