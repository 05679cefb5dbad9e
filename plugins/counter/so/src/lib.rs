//! `libcounter.so`: exports the `counter` merge operator to the worker.
farm_plugin_sdk::export_plugin!(merge_operators: [farm_plugin_counter::Counter], compaction_filters: []);
