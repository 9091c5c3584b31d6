//! The MTA: `enqueue` (the one way out), the queue, delivery to MX hosts, bounces and DSNs.
//!
//! Every sender calls [`prepare`] and [`enqueue`] (in its own transaction, beside what it records
//! with the send) or [`send`] (both at once); see [`enqueue`](mod@enqueue) for the routing rule.

pub mod deliver;
pub mod dsn;
pub mod enqueue;
pub mod queue;
pub mod unsubscribe;

pub use enqueue::{Outgoing, Prepared, PreparedBody, SignerCache, enqueue, prepare, prepare_cached, send};
