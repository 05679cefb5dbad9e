//! What a drain waits for: attempts still to end, results still to be
//! collected (see [`crate::worker::drain`]).

use super::*;

/// Where a drain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainProgress {
    /// Attempts queued, running or being admitted: places taken in the
    /// queue.
    pub attempts: usize,
    /// Succeeded attempts, still retained, whose result nobody collected.
    pub uncollected: usize,
}

impl Supervisor {
    /// The drain this supervisor shows and admission consults.
    pub fn drain(&self) -> &Arc<Drain> {
        &self.drain
    }

    pub fn drain_progress(&self) -> DrainProgress {
        let st = self.lock();
        let uncollected = st
            .attempts
            .values()
            .filter(|e| {
                !e.collected
                    && matches!(
                        e.phase,
                        Phase::Finished {
                            outcome: Outcome::Succeeded,
                            ..
                        }
                    )
            })
            .count();
        DrainProgress {
            attempts: self.gate.places_taken(),
            uncollected,
        }
    }
}
