//! The worker's pages for people: `/stat` and `/list`, the attempt files
//! they link to, and the formatting both share.
//!
//! - [`page`]: the HTML of `/stat` and `/list`: running and recent
//!   attempts, kill buttons, links to each attempt's files.
//! - [`files`]: `GET /attempts/<attempt name>/<file>`, confined to
//!   `WORKER_DB_ROOT`.
//! - [`format`](mod@format): escaping, sizes, speeds and times in HTML.
//! - [`routes`]: the handlers, merged into the worker's router.

pub mod files;
pub mod format;
pub mod page;
pub mod routes;
