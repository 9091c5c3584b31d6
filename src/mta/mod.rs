//! The MTA: `admit` (may this mailbox send now?), `enqueue` (the one way out), the queue,
//! delivery to MX hosts, bounces and DSNs.
//!
//! Every sender calls [`prepare`] and then, in its own transaction beside what it records with
//! the send, [`admit`](mod@admit) and [`enqueue`]; or [`send`] for system mail (both at once). See
//! [`enqueue`](mod@enqueue) for the routing rule.

pub mod admit;
pub mod bounce;
pub mod deliver;
pub mod dsn;
pub mod enqueue;
pub mod prepare;
pub mod queue;
pub mod status;

pub use enqueue::{enqueue, send};
pub use prepare::{Outgoing, Prepared, PreparedBody, SignerCache, prepare, prepare_cached};
pub use status::QueueStatus;
