//! Operating a farm: draining a worker (`POST /drain`, SIGUSR1, SIGTERM, a
//! termination notice), a rolling upgrade under load, and ToplingDB's own
//! settings as an operator coming from ToplingDB writes them.

mod drain_endpoint;
mod https_front;
mod rolling_upgrade;
mod termination_check;
mod toplingdb_settings;
mod worker_at;
