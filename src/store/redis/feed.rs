//! The finished-jobs feed of the [`RedisStore`](super::RedisStore): every script that
//! moves a job to a terminal state publishes its id on `{prefix}finished` (in `finish`,
//! `lua/prelude.lua`), and [`spawn`] relays what that channel carries to the engine, so a
//! waiter on one replica wakes when another finishes the job.
//!
//! Pub/sub is fire-and-forget: a message sent while a subscriber is disconnected is lost.
//! That is acceptable because waiters re-read the store once a second anyway; the feed
//! only makes the common case prompt. The subscription therefore lives on its own
//! connection (a subscribed connection can issue no other commands) and is re-established
//! after a pause whenever it drops, until the receiver goes away.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Ids buffered for a slow engine; beyond this the relay waits (the store is not held up).
const BUFFER: usize = 1024;
/// Pause before subscribing again after the connection dropped or could not be made.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// The pub/sub channel for `prefix`.
pub(super) fn channel(prefix: &str) -> String {
    format!("{prefix}finished")
}

/// Starts relaying `channel` and returns its receiving end.
pub(super) fn spawn(client: redis::Client, channel: String) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        while !tx.is_closed() {
            match relay(&client, &channel, &tx).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "finished-jobs feed lost; resubscribing"),
            }
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    });
    rx
}

/// Subscribes and forwards ids until the connection ends (an error, so the caller
/// subscribes again) or the receiver is dropped (`Ok`: stop).
async fn relay(
    client: &redis::Client,
    channel: &str,
    tx: &mpsc::Sender<String>,
) -> Result<(), String> {
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        let Ok(id) = std::str::from_utf8(msg.get_payload_bytes()) else {
            continue;
        };
        if tx.send(id.to_owned()).await.is_err() {
            return Ok(());
        }
    }
    Err("the subscription connection closed".to_owned())
}
