//! The trust boundary: a worker given a wrong setting or a hostile request
//! never harms what is not its own. Every worker here runs in the sandbox
//! (`crate::sandbox`), and every test checks that what lies outside the
//! allowed roots is unchanged, content and mtime.

mod admission_bound;
mod canary;
mod exposure;
mod http_limits;
mod mount_requests;
mod properties;
mod requests;
mod roots;
