//! A TCP relay the test controls, between a gateway and its Redis: it forwards, then
//! **blackholes** (keeps every connection open and accepts new ones, but moves no byte in
//! either direction — what a dead switch or a dropped route looks like to both ends), then
//! **resets** (every connection it held is closed with a RST, and it forwards again).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A running relay to `target` on a free loopback port; stops with the test's runtime.
pub struct Relay {
    pub addr: SocketAddr,
    ctl: Arc<Ctl>,
}

struct Ctl {
    blackhole: AtomicBool,
    /// Bumped by `reset`: pumps of an older generation close their connection.
    generation: AtomicU64,
    changed: Notify,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctl = Arc::new(Ctl {
            blackhole: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            changed: Notify::new(),
        });
        let c = Arc::clone(&ctl);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let c = Arc::clone(&c);
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    // Linger 0: a relay connection that closes sends a RST, as a reset
                    // path does, not an orderly FIN.
                    for s in [&inbound, &outbound] {
                        let _ = s.set_zero_linger();
                        let _ = s.set_nodelay(true);
                    }
                    let gen = c.generation.load(Ordering::SeqCst);
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    let up = tokio::spawn(pump(ir, ow, Arc::clone(&c), gen));
                    let down = tokio::spawn(pump(or, iw, c, gen));
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Relay { addr, ctl }
    }

    /// From now on no byte moves, on held or new connections.
    pub fn blackhole(&self) {
        self.ctl.blackhole.store(true, Ordering::SeqCst);
        self.ctl.changed.notify_waiters();
    }

    /// Every connection held so far is reset; new ones are forwarded again.
    pub fn reset(&self) {
        self.ctl.generation.fetch_add(1, Ordering::SeqCst);
        self.ctl.blackhole.store(false, Ordering::SeqCst);
        self.ctl.changed.notify_waiters();
    }
}

/// Copies `from` → `to` while forwarding; holds while blackholed; ends on a reset.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, ctl: Arc<Ctl>, gen: u64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !held(&ctl, gen).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = ctl.changed.notified() => continue,
        };
        // Bytes read just as the blackhole began wait with it.
        if !held(&ctl, gen).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits out a blackhole; false once this connection's generation was reset.
async fn held(ctl: &Ctl, gen: u64) -> bool {
    loop {
        let notified = ctl.changed.notified();
        if ctl.generation.load(Ordering::SeqCst) != gen {
            return false;
        }
        if !ctl.blackhole.load(Ordering::SeqCst) {
            return true;
        }
        notified.await;
    }
}
