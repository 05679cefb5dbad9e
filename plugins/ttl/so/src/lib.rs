//! `libttl.so`: exports the `ttl` compaction filter to the worker, configured
//! from `FARM_TTL_SECONDS` and `FARM_TTL_NOW`.
farm_plugin_sdk::export_plugin!(merge_operators: [], compaction_filters: [farm_plugin_ttl::Ttl]);
