//! Shared memory between a child and the zipserver: the design.
//!
//! A child that starts talking to the zipserver creates a ring: a `memfd`
//! sealed against shrinking (so the zipserver's mapping can never fault),
//! with a fixed number of slots, each one block's input and output area.
//! It hands the fd to the zipserver over the Unix socket (`SCM_RIGHTS`);
//! the zipserver answers with its control page (another `memfd`), shared by
//! every child. The socket then only says whether the other side is alive:
//! when the zipserver dies, the child's watcher sees the connection end.
//!
//! A block's life in a slot is a state word (a futex):
//!
//! ```text
//! FREE -claim(child)-> CLAIMED -fill, submit(child)-> SUBMITTED -take(server)-> TAKEN
//!   ^                                  | cancel(child)                          | finish(server)
//!   +----------------------------------+          DONE <------------------------+
//!   +------------------- read the answer (child) --+
//!   TAKEN -give up(child)-> ABANDONED -finish(server)-> FREE
//! ```
//!
//! plus two flag bits: `WAITING` (a child thread sleeps on the word, so the
//! server must wake it) and `DEAD` (the child's watcher saw the zipserver
//! go; waiters stop waiting). Nobody sleeps unless it must: a child wakes
//! the zipserver (the control page's doorbell) only when no compression
//! thread of the block's lane is awake, and the zipserver wakes a child
//! thread only when that thread has said it sleeps. An awake compression
//! thread takes every block of its lane it finds in every ring before it
//! goes back to sleep, so one wake-up carries as many blocks as arrived
//! meanwhile, from all children. Lanes keep both wake-ups on one CPU
//! ([`control`]).
//!
//! - [`map`]: creating, sealing, receiving and mapping a `memfd`.
//! - [`layout`]: where the words and areas of a ring are, and the slot
//!   states.
//! - [`control`]: the control page: lanes, doorbells, which CPU uses which
//!   lane.
//! - [`futex`]: sleeping on and waking a shared word.
//! - [`fdpass`]: sending a file descriptor over a Unix socket.

pub mod control;
pub mod fdpass;
pub mod futex;
pub mod layout;
pub mod map;
