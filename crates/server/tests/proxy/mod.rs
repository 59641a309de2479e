//! A TCP proxy a test puts between a node and a backend (Redis, PostgreSQL) so it can cut the
//! node's connections as a network failure would, without touching the shared backend. Binds
//! 127.0.0.1 port 0; every connection and the listener end when the proxy is dropped.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy to one upstream address.
pub struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts proxying to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut list = tracked.lock().unwrap_or_else(PoisonError::into_inner);
                list.retain(|c| !c.is_finished());
                list.push(relay);
            }
        });
        Self {
            addr,
            accept,
            connections,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection open now (both ends see it close); new ones are accepted again.
    pub fn cut(&self) -> usize {
        let mut list = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let open = list.iter().filter(|c| !c.is_finished()).count();
        for connection in list.drain(..) {
            connection.abort();
        }
        open
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
