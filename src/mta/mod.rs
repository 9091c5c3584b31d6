//! The MTA: `enqueue` (the one way out), the queue, delivery to MX hosts, bounces and DSNs.

pub mod deliver;
