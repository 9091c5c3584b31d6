//! DNS: domain names, DKIM keys and the records a domain must publish.

pub mod dkim;
pub mod health;
pub mod name;
pub mod records;
pub mod resolver;
