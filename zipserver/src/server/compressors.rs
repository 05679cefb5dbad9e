//! The built-in compressors one compression thread (or socket connection)
//! has made, by parameters, each with its working area: made once, used
//! for every later block with the same parameters.

use crate::codec::{BuiltinCompressor, CodecError, ZipParams};
use std::collections::HashMap;

/// Why a block is not compressed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("block needs {bytes} bytes, more than the whole memory budget")]
    OverBudget { bytes: u64 },
    #[error("parameters {0:?} mean no compression")]
    NoCompression(ZipParams),
    #[error("compression failed: {0}")]
    Failed(#[source] CodecError),
}

#[derive(Default)]
pub struct Compressors(HashMap<ZipParams, Option<BuiltinCompressor>>);

impl Compressors {
    /// The compressor for `params`, made on first use.
    pub fn get(&mut self, params: ZipParams) -> Result<&mut BuiltinCompressor, Refusal> {
        let entry = match self.0.entry(params) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(BuiltinCompressor::new(&params).map_err(Refusal::Failed)?)
            }
        };
        entry.as_mut().ok_or(Refusal::NoCompression(params))
    }
}
