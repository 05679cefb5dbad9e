// The C++ half of the RocksDB bridge (farm/src/rocks/).
//
// RocksDB's C API covers scheduling and OpenAndCompact, but not the pieces the
// farm needs to be exact about a job:
//   - per-column-family options of one given OPTIONS file (LoadOptionsFromFile),
//     so the override carries the hoster's table factory, not a default one;
//   - reading and rewriting RocksDB's serialized compaction input and result
//     (CompactionServiceInput/Result, internal headers of the same source);
//   - reading an SST's table properties and verifying its block checksums.
//
// Every function catches C++ exceptions and reports errors through `errptr`
// (a malloc'ed string the caller frees), the same convention as RocksDB's C API
// (farm_guard.h).
// Text answers are "key=value\n" lines; values that may hold arbitrary bytes are
// hex-encoded.

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "db/compaction/compaction_job.h"
#include "farm_file_checksum.h"
#include "farm_guard.h"
#include "farm_inputs_only.h"
#include "farm_remote_fs.h"
#include "rocksdb/c.h"
#include "rocksdb/convenience.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/table.h"
#include "rocksdb/table_properties.h"
#include "rocksdb/utilities/options_util.h"

using ROCKSDB_NAMESPACE::ColumnFamilyDescriptor;
using ROCKSDB_NAMESPACE::CompactionServiceInput;
using ROCKSDB_NAMESPACE::CompactionServiceOptionsOverride;
using ROCKSDB_NAMESPACE::CompactionServiceResult;
using ROCKSDB_NAMESPACE::ConfigOptions;
using ROCKSDB_NAMESPACE::DBOptions;
using ROCKSDB_NAMESPACE::Env;
using ROCKSDB_NAMESPACE::Logger;
using ROCKSDB_NAMESPACE::Options;
using ROCKSDB_NAMESPACE::ReadOptions;
using ROCKSDB_NAMESPACE::SstFileReader;
using ROCKSDB_NAMESPACE::Status;
using ROCKSDB_NAMESPACE::TableProperties;

// Identical to the definition in RocksDB's db/c.cc, which keeps this type
// opaque. The shim fills `rep` and hands the pointer to the C API functions
// (set_option, open_and_compact, destroy), which read the same layout.
struct rocksdb_compaction_service_options_override_t {
  CompactionServiceOptionsOverride rep;
};

namespace {

using farm::dup_bytes;
using farm::guarded;
using farm::save_error;

std::string hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

void line(std::string* out, const char* key, const std::string& value) {
  out->append(key);
  out->push_back('=');
  out->append(value);
  out->push_back('\n');
}

void line(std::string* out, const char* key, uint64_t value) {
  line(out, key, std::to_string(value));
}

// The user key of an internal key: all but its 8-byte trailer.
std::string user_key_of(const std::string& internal_key) {
  if (internal_key.size() < 8) return internal_key;
  return internal_key.substr(0, internal_key.size() - 8);
}

}  // namespace

extern "C" {

void farm_free(void* p) noexcept { free(p); }

// Builds the override for a compaction of column family `cf_name` from the
// OPTIONS file at `options_file`: the family's own table factory, comparator,
// merge operator, compaction filter (factory), prefix extractor, SST
// partitioner and property collectors; the file checksum factory of
// farm_file_checksum.h (the DB's own when it names another kind), so that
// every output carries its whole-file checksum for the hoster's check.
// `remote_inputs`: for a DB read over HTTP, the numbers of the job's input
// tables (its MANIFEST is planned for trimming); null otherwise.
static rocksdb_compaction_service_options_override_t* override_from_options_file(
    Env* env, const char* options_file, const char* cf_name, char** errptr,
    const std::set<uint64_t>* remote_inputs = nullptr) noexcept {
  rocksdb_compaction_service_options_override_t* result = nullptr;
  guarded(errptr, [&] {
    ConfigOptions config;
    config.env = env;
    config.ignore_unknown_options = true;
    DBOptions db_options;
    std::vector<ColumnFamilyDescriptor> families;
    Status s =
        LoadOptionsFromFile(config, options_file, &db_options, &families);
    if (!s.ok()) {
      save_error(errptr, "failed to load options file: " + s.ToString());
      return;
    }
    const ColumnFamilyDescriptor* family = nullptr;
    for (const auto& f : families) {
      if (f.name == cf_name) family = &f;
    }
    if (family == nullptr) {
      save_error(errptr, std::string("column family not in options file: ") +
                             cf_name);
      return;
    }
    if (family->options.table_factory == nullptr) {
      save_error(errptr, "options file gives the column family no table factory");
      return;
    }
    auto ov = std::make_unique<rocksdb_compaction_service_options_override_t>();
    CompactionServiceOptionsOverride& rep = ov->rep;
    rep.env = env;
    rep.file_checksum_gen_factory =
        farm::output_checksum_factory(db_options.file_checksum_gen_factory);
    rep.comparator = family->options.comparator;
    rep.merge_operator = family->options.merge_operator;
    rep.compaction_filter = family->options.compaction_filter;
    rep.compaction_filter_factory = family->options.compaction_filter_factory;
    rep.prefix_extractor = family->options.prefix_extractor;
    rep.table_factory = family->options.table_factory;
    rep.sst_partitioner_factory = family->options.sst_partitioner_factory;
    rep.table_properties_collector_factories =
        family->options.table_properties_collector_factories;
    if (remote_inputs != nullptr) {
      std::string db_dir(options_file);
      db_dir.resize(db_dir.rfind('/') == std::string::npos ? 0 : db_dir.rfind('/'));
      farm::plan_manifest_trim(db_dir, family->options, cf_name, *remote_inputs);
    }
    result = ov.release();
  });
  return result;
}

rocksdb_compaction_service_options_override_t* farm_override_from_options_file(
    const char* options_file, const char* cf_name, char** errptr) noexcept {
  return override_from_options_file(Env::Default(), options_file, cf_name, errptr);
}

void* farm_remote_env() noexcept;
int farm_override_use_remote_env(rocksdb_compaction_service_options_override_t* ov,
                                 char** errptr) noexcept;

// The same for an OPTIONS file of a DB the worker reads over HTTP (a path
// below "/.farm-remote/", farm_remote_fs.cc): loaded through the remote
// file system, which the override then reads the DB through; its MANIFEST
// is planned for trimming to what the job's `inputs` (table numbers) need.
rocksdb_compaction_service_options_override_t* farm_override_from_remote_options_file(
    const char* options_file, const char* cf_name, const uint64_t* inputs, size_t n_inputs,
    char** errptr) noexcept {
  Env* env = static_cast<Env*>(farm_remote_env());
  std::set<uint64_t> input_numbers;
  guarded(errptr, [&] { input_numbers.insert(inputs, inputs + n_inputs); });
  if (errptr != nullptr && *errptr != nullptr) return nullptr;
  rocksdb_compaction_service_options_override_t* ov =
      override_from_options_file(env, options_file, cf_name, errptr, &input_numbers);
  if (ov != nullptr && farm_override_use_remote_env(ov, errptr) == 0) {
    delete ov;
    return nullptr;
  }
  return ov;
}

// Sends RocksDB's log of the job to the file at `path`. Returns 1 on success.
int farm_override_set_info_log(rocksdb_compaction_service_options_override_t* ov,
                               const char* path, char** errptr) noexcept {
  int ok = 0;
  guarded(errptr, [&] {
    std::shared_ptr<Logger> logger;
    Status s = Env::Default()->NewLogger(path, &logger);
    if (!s.ok()) {
      save_error(errptr, "failed to open info log: " + s.ToString());
      return;
    }
    logger->SetInfoLogLevel(ROCKSDB_NAMESPACE::InfoLogLevel::INFO_LEVEL);
    ov->rep.info_log = logger;
    ok = 1;
  });
  return ok;
}

// Describes what an override will make RocksDB use, so the worker can
// compare it with the OPTIONS file's text: table_factory (name),
// filter_policy (hex of its id, empty when none), table_options (hex of the
// factory's option string), and the name (hex, empty when none) of each
// user class: comparator, merge_operator, compaction_filter,
// compaction_filter_factory, prefix_extractor, sst_partitioner_factory.
char* farm_override_describe(
    const rocksdb_compaction_service_options_override_t* ov, char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    const auto& rep = ov->rep;
    std::string text;
    // A DB read over HTTP has its factory wrapped (farm_inputs_only.cc):
    // the column family's own is described.
    const auto* factory = farm::described_factory(rep.table_factory.get());
    line(&text, "table_factory", factory ? factory->Name() : "");
    std::string filter;
    std::string table_options;
    if (factory) {
      const auto* bbt = factory->GetOptions<ROCKSDB_NAMESPACE::BlockBasedTableOptions>();
      if (bbt != nullptr && bbt->filter_policy != nullptr) {
        filter = bbt->filter_policy->GetId();
      }
      ConfigOptions config;
      table_options = factory->ToString(config);
    }
    line(&text, "filter_policy", hex(filter));
    line(&text, "table_options", hex(table_options));
    line(&text, "comparator", hex(rep.comparator ? rep.comparator->Name() : ""));
    line(&text, "merge_operator", hex(rep.merge_operator ? rep.merge_operator->Name() : ""));
    line(&text, "compaction_filter",
         hex(rep.compaction_filter ? rep.compaction_filter->Name() : ""));
    line(&text, "compaction_filter_factory",
         hex(rep.compaction_filter_factory ? rep.compaction_filter_factory->Name() : ""));
    line(&text, "prefix_extractor",
         hex(rep.prefix_extractor ? rep.prefix_extractor->Name() : ""));
    line(&text, "sst_partitioner_factory",
         hex(rep.sst_partitioner_factory ? rep.sst_partitioner_factory->Name() : ""));
    out = dup_bytes(text);
  });
  return out;
}

// Describes a serialized CompactionServiceInput as text lines:
// cf_name (hex), options_file_number, output_level, db_id (hex), has_begin,
// has_end, snapshots, and one input_file line per input file.
char* farm_input_describe(const char* input, size_t len, char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    CompactionServiceInput parsed;
    Status s = CompactionServiceInput::Read(std::string(input, len), &parsed);
    if (!s.ok()) {
      save_error(errptr, "failed to parse compaction input: " + s.ToString());
      return;
    }
    std::string text;
    line(&text, "cf_name", hex(parsed.cf_name));
    line(&text, "options_file_number", parsed.options_file_number);
    line(&text, "output_level", static_cast<uint64_t>(parsed.output_level));
    line(&text, "db_id", hex(parsed.db_id));
    line(&text, "has_begin", parsed.has_begin ? 1 : 0);
    line(&text, "has_end", parsed.has_end ? 1 : 0);
    line(&text, "snapshots", parsed.snapshots.size());
    for (const auto& f : parsed.input_files) line(&text, "input_file", hex(f));
    out = dup_bytes(text);
  });
  return out;
}

// Describes a serialized CompactionServiceResult: status (hex of the status
// string, "OK" when ok), output_path (hex), output_level, bytes_read,
// bytes_written, and per output one "output_file=<hex name>:<size>" line
// followed by its output_keys, output_props and output_checksum (hex of the
// checksum function's name, hex of the checksum; both empty when none).
char* farm_result_describe(const char* result, size_t len, char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    CompactionServiceResult parsed;
    Status s = CompactionServiceResult::Read(std::string(result, len), &parsed);
    if (!s.ok()) {
      save_error(errptr, "failed to parse compaction result: " + s.ToString());
      return;
    }
    std::string text;
    line(&text, "status", hex(parsed.status.ToString()));
    line(&text, "status_ok", parsed.status.ok() ? 1 : 0);
    line(&text, "output_path", hex(parsed.output_path));
    line(&text, "output_level", static_cast<uint64_t>(parsed.output_level));
    line(&text, "bytes_read", parsed.bytes_read);
    line(&text, "bytes_written", parsed.bytes_written);
    const auto& st = parsed.stats;
    line(&text, "is_manual_compaction", st.is_manual_compaction ? 1 : 0);
    line(&text, "is_remote_compaction", st.is_remote_compaction ? 1 : 0);
    line(&text, "is_full_compaction", st.is_full_compaction ? 1 : 0);
    line(&text, "num_input_records", st.num_input_records);
    line(&text, "num_output_records", st.num_output_records);
    const auto& out_level = parsed.internal_stats.output_level_stats;
    line(&text, "num_output_files", static_cast<uint64_t>(out_level.num_output_files));
    line(&text, "micros", out_level.micros);
    line(&text, "cpu_micros", out_level.cpu_micros);
    line(&text, "proximal_num_output_files",
         static_cast<uint64_t>(parsed.internal_stats.proximal_level_stats.num_output_files));
    for (const auto& f : parsed.output_files) {
      line(&text, "output_file",
           hex(f.file_name) + ":" + std::to_string(f.file_size));
      // The user keys of the file's bounds (internal key minus its 8-byte
      // trailer), its entries and the comparator it was written with.
      line(&text, "output_keys",
           hex(user_key_of(f.smallest_internal_key)) + ":" +
               hex(user_key_of(f.largest_internal_key)));
      const auto& tp = f.table_properties;
      line(&text, "output_props",
           std::to_string(tp.num_entries) + ":" + std::to_string(tp.num_range_deletions) +
               ":" + hex(tp.comparator_name));
      line(&text, "output_checksum",
           hex(f.file_checksum_func_name) + ":" + hex(f.file_checksum));
    }
    parsed.status.PermitUncheckedError();
    out = dup_bytes(text);
  });
  return out;
}

// Re-serializes a CompactionServiceResult with `output_path` replaced.
char* farm_result_set_output_path(const char* result, size_t len,
                                  const char* output_path, size_t* out_len,
                                  char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    CompactionServiceResult parsed;
    Status s = CompactionServiceResult::Read(std::string(result, len), &parsed);
    if (!s.ok()) {
      save_error(errptr, "failed to parse compaction result: " + s.ToString());
      return;
    }
    parsed.output_path = output_path;
    std::string serialized;
    s = parsed.Write(&serialized);
    if (!s.ok()) {
      save_error(errptr, "failed to serialize compaction result: " + s.ToString());
      return;
    }
    *out_len = serialized.size();
    out = dup_bytes(serialized);
  });
  return out;
}

// Opens the SST at `path` in `reader`; its table properties, or null with
// `errptr` set.
static std::shared_ptr<const TableProperties> open_sst(SstFileReader* reader, const char* path,
                                                       char** errptr) {
  Status s = reader->Open(path);
  if (!s.ok()) {
    save_error(errptr, "failed to open sst: " + s.ToString());
    return nullptr;
  }
  std::shared_ptr<const TableProperties> props = reader->GetTableProperties();
  if (props == nullptr) {
    save_error(errptr, "sst has no table properties");
  }
  return props;
}

// Reads an SST file's table properties as text lines.
char* farm_sst_properties(const char* path, char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    Options options;
    SstFileReader reader(options);
    std::shared_ptr<const TableProperties> props = open_sst(&reader, path, errptr);
    if (props == nullptr) {
      return;
    }
    std::string text;
    line(&text, "db_host_id", hex(props->db_host_id));
    line(&text, "filter_policy_name", hex(props->filter_policy_name));
    line(&text, "compression_name", hex(props->compression_name));
    line(&text, "column_family_name", hex(props->column_family_name));
    line(&text, "format_version", props->format_version);
    line(&text, "data_size", props->data_size);
    line(&text, "num_data_blocks", props->num_data_blocks);
    line(&text, "num_entries", props->num_entries);
    line(&text, "num_deletions", props->num_deletions);
    line(&text, "num_range_deletions", props->num_range_deletions);
    line(&text, "filter_size", props->filter_size);
    out = dup_bytes(text);
  });
  return out;
}

// Describes an SST file's key range: comparator_name (hex), num_entries,
// num_range_deletions, has_keys, smallest and largest (hex of the user keys
// of its first and last point entries, deletions included).
char* farm_sst_bounds(const char* path, char** errptr) noexcept {
  char* out = nullptr;
  guarded(errptr, [&] {
    Options options;
    SstFileReader reader(options);
    std::shared_ptr<const TableProperties> props = open_sst(&reader, path, errptr);
    if (props == nullptr) {
      return;
    }
    std::string smallest;
    std::string largest;
    bool has_keys = false;
    std::unique_ptr<ROCKSDB_NAMESPACE::Iterator> it = reader.NewTableIterator();
    ROCKSDB_NAMESPACE::ParsedEntryInfo parsed;
    it->SeekToFirst();
    if (it->Valid()) {
      Status s = reader.ParseTableIteratorKey(it->key(), &parsed);
      if (!s.ok()) {
        save_error(errptr, "failed to parse the first key: " + s.ToString());
        return;
      }
      smallest = parsed.user_key.ToString();
      it->SeekToLast();
      if (it->Valid()) {
        s = reader.ParseTableIteratorKey(it->key(), &parsed);
        if (!s.ok()) {
          save_error(errptr, "failed to parse the last key: " + s.ToString());
          return;
        }
        largest = parsed.user_key.ToString();
        has_keys = true;
      }
    }
    if (!it->status().ok()) {
      save_error(errptr, "failed to read sst keys: " + it->status().ToString());
      return;
    }
    std::string text;
    line(&text, "comparator_name", hex(props->comparator_name));
    line(&text, "num_entries", props->num_entries);
    line(&text, "num_range_deletions", props->num_range_deletions);
    line(&text, "has_keys", has_keys ? 1 : 0);
    line(&text, "smallest", hex(smallest));
    line(&text, "largest", hex(largest));
    out = dup_bytes(text);
  });
  return out;
}

// Verifies every block checksum of an SST file. Returns 1 when the file is
// sound; 0 with `errptr` set otherwise.
int farm_sst_verify(const char* path, char** errptr) noexcept {
  int ok = 0;
  guarded(errptr, [&] {
    Options options;
    SstFileReader reader(options);
    Status s = reader.Open(path);
    if (!s.ok()) {
      save_error(errptr, "failed to open sst: " + s.ToString());
      return;
    }
    s = reader.VerifyChecksum(ReadOptions());
    if (!s.ok()) {
      save_error(errptr, "checksum verification failed: " + s.ToString());
      return;
    }
    ok = 1;
  });
  return ok;
}

}  // extern "C"
