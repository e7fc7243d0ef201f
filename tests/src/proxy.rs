//! A loopback TCP proxy a test can cut and restore, to put between the
//! gateway and a PostgreSQL server: [`Cut::Refuse`] hangs up every open
//! connection and every new one at once (the server is down), [`Cut::Silent`]
//! stops forwarding but keeps every socket open (a network partition: nothing
//! answers, nothing fails), and [`CutProxy::restore`] forwards again (a
//! partitioned connection resumes where it stopped).

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Forwards both ways.
    Open,
    /// Closes every connection, open or new.
    Refuse,
    /// Forwards nothing; sockets stay open (new ones are accepted and left waiting).
    Silent,
}

/// A running proxy to one upstream address.
pub struct CutProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Cut>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, _) = watch::channel(Cut::Open);
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let modes = modes.subscribe();
                tokio::spawn(serve(client, upstream, modes));
            }
        });
        Self { addr, mode, task }
    }

    /// The proxy for a PostgreSQL URL's host and port, and that URL rewritten to go through it.
    pub async fn for_postgres_url(url: &str) -> (Self, String) {
        let parsed = url::Url::parse(url).expect("postgres URL");
        let host = parsed.host_str().expect("host");
        let port = parsed.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host, port))
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let proxy = Self::start(upstream).await;
        let mut through = parsed.clone();
        through.set_host(Some("127.0.0.1")).expect("host");
        through.set_port(Some(proxy.addr.port())).expect("port");
        (proxy, through.to_string())
    }

    pub fn cut(&self, how: Cut) {
        self.mode.send_replace(how);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Cut::Open);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Cut::Refuse);
        self.task.abort();
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Cut>) {
    // A connection made while silent waits (unanswered) until the cut ends.
    if !wait_open(&mut mode).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Both directions end together: when either returns, the other is dropped
    // with it, so both sockets close.
    tokio::select! {
        _ = pump(client_read, server_write, mode.clone()) => {}
        _ = pump(server_read, client_write, mode) => {}
    }
}

/// Waits while the proxy is silent; false when it refuses (or is gone).
async fn wait_open(mode: &mut watch::Receiver<Cut>) -> bool {
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Cut::Open => return true,
            Cut::Refuse => return false,
            Cut::Silent => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Copies `from` to `to` while open; pauses while silent; returns on refuse, EOF or error.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Cut>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !wait_open(&mut mode).await {
            return;
        }
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
