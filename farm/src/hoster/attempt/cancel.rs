//! The cancel of a submission that timed out.

use crate::hoster::http::Client;
use crate::protocol::attempt::AttemptKey;

/// A submission that timed out may still be admitted by the worker
/// (admission can take as long as a mount): ask it to cancel the
/// attempt, without holding RocksDB's thread. A worker that has not got
/// the job yet remembers the cancel and refuses the job when it arrives;
/// the hoster has already moved on to another attempt.
pub fn cancel_in_background(client: &Client, base: &str, key: &AttemptKey) {
    let client = client.clone();
    let (base, key) = (base.to_owned(), key.clone());
    let sent = std::thread::Builder::new()
        .name("farm-cancel".into())
        .spawn(move || client.cancel(&base, &key));
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not send the cancel of a timed-out submission");
    }
}
