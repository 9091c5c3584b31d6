//! SMTP: one session engine (smtp-proto parsing, TLS, pipelining) with two policies, submission and inbound.
