//! Delivery: workers that claim due queue rows, find MX hosts, talk SMTP to them, and record the outcome.
