// The trimmed MANIFEST of the HTTP storage mode (docs/REMOTE_STORAGE.md,
// "The trimmed MANIFEST").
//
// OpenAndCompact's secondary open replays the whole MANIFEST and, because it
// forces max_open_files=-1, creates a table reader (a placeholder,
// farm_inputs_only.cc) and a table-cache entry for every live table: at
// 10,000 live tables that is most of a job's start. The compaction itself
// needs of the version only what can change its output:
//
// - its inputs;
// - every table of its column family whose user-key range overlaps the
//   inputs' range, at any level: the bottommost check and the tombstone
//   and zero-sequence decisions (Compaction::KeyNotExistsBeyondOutputLevel),
//   the grandparent cuts of the outputs, the input expansion of CompactFiles;
// - every level-0 table of its column family: whether a compaction to level
//   0 is bottommost counts the level-0 files after it, whatever their range
//   (VersionStorageInfo::RangeMightExistAfterSortedRun);
// - one table of every non-empty level: the number of non-empty levels
//   chooses the bottommost compression (GetCompressionType);
// - one table more than the inputs when the column family has more:
//   whether the compaction is a full one is told by counting
//   (Compaction::IsFullCompaction), and a compaction filter sees it.
//
// Everything else is left out: the last add of a left-out table is removed
// from the record that holds it, so every earlier add and delete of it (a
// trivial move) still pairs up. Records are otherwise copied byte for byte;
// a record that is changed must first re-encode to exactly its own bytes
// (so that nothing this RocksDB does not know is lost), and is then encoded
// without the left-out adds.
//
// What the options decide (trim_refusal): with dynamic level sizes, the base
// level follows the size of the last level, and it chooses per-level
// compression and the output file size when these vary by level; per-key
// placement counts the files of the proximal level; blob files, timestamps
// and unknown epoch numbers are not handled. In each such case, and for
// any record that does not decode or re-encode, the MANIFEST is served whole,
// as before.

#include "farm_manifest_trim.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/log_reader.h"
#include "db/log_writer.h"
#include "db/version_edit.h"
#include "file/sequence_file_reader.h"
#include "file/writable_file_writer.h"
#include "rocksdb/file_system.h"

using ROCKSDB_NAMESPACE::ColumnFamilyOptions;
using ROCKSDB_NAMESPACE::Comparator;
using ROCKSDB_NAMESPACE::FileOptions;
using ROCKSDB_NAMESPACE::FSSequentialFile;
using ROCKSDB_NAMESPACE::FSWritableFile;
using ROCKSDB_NAMESPACE::IODebugContext;
using ROCKSDB_NAMESPACE::IOOptions;
using ROCKSDB_NAMESPACE::IOStatus;
using ROCKSDB_NAMESPACE::SequentialFileReader;
using ROCKSDB_NAMESPACE::Slice;
using ROCKSDB_NAMESPACE::Status;
using ROCKSDB_NAMESPACE::VersionEdit;
using ROCKSDB_NAMESPACE::WritableFileWriter;
using ROCKSDB_NAMESPACE::WriteOptions;
namespace rlog = ROCKSDB_NAMESPACE::log;

namespace {

// A file that reads a string.
class StringSource : public FSSequentialFile {
 public:
  explicit StringSource(std::shared_ptr<const std::string> data) : data_(std::move(data)) {}

  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) override {
    size_t take = std::min(n, data_->size() - at_);
    memcpy(scratch, data_->data() + at_, take);
    at_ += take;
    *result = Slice(scratch, take);
    return IOStatus::OK();
  }

  IOStatus Skip(uint64_t n) override {
    at_ += std::min<uint64_t>(n, data_->size() - at_);
    return IOStatus::OK();
  }

 private:
  std::shared_ptr<const std::string> data_;
  size_t at_ = 0;
};

// A file that appends to a string.
class StringSink : public FSWritableFile {
 public:
  explicit StringSink(std::string* out) : out_(out) {}

  IOStatus Append(const Slice& data, const IOOptions&, IODebugContext*) override {
    out_->append(data.data(), data.size());
    return IOStatus::OK();
  }
  IOStatus Close(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Sync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override { return out_->size(); }

 private:
  std::string* out_;
};

class Reporter : public rlog::Reader::Reporter {
 public:
  void Corruption(size_t, const Status& s, uint64_t) override {
    if (why.empty()) why = s.ToString();
  }
  std::string why;
};

// The records of a MANIFEST, or why they could not be read.
bool read_records(std::shared_ptr<const std::string> manifest,
                  std::vector<std::string>* records, std::string* why) {
  auto file = std::make_unique<SequentialFileReader>(
      std::make_unique<StringSource>(std::move(manifest)), "MANIFEST");
  Reporter reporter;
  rlog::Reader reader(nullptr, std::move(file), &reporter, /*checksum=*/true, /*log_num=*/0);
  Slice record;
  std::string scratch;
  while (reader.ReadRecord(&record, &scratch)) {
    records->emplace_back(record.data(), record.size());
  }
  if (!reporter.why.empty()) {
    *why = "the MANIFEST is damaged: " + reporter.why;
    return false;
  }
  return true;
}

// A live table: where its last add is, and what it covers.
struct Live {
  uint32_t cf;
  int level;
  std::string smallest;
  std::string largest;
  size_t record;
  size_t position;
};

// The live tables after replaying the records; column family names by id;
// the records decoded.
struct Replay {
  std::unordered_map<uint64_t, Live> live;
  std::map<uint32_t, std::string> cf_names{{0, "default"}};
  std::vector<std::unique_ptr<VersionEdit>> edits;
  std::string why_not;
};

Replay replay(const std::vector<std::string>& records) {
  Replay r;
  r.edits.reserve(records.size());
  for (size_t i = 0; i < records.size(); i++) {
    r.edits.push_back(std::make_unique<VersionEdit>());
    VersionEdit& edit = *r.edits.back();
    Status s = edit.DecodeFrom(records[i]);
    if (!s.ok()) {
      r.why_not = "a record does not decode: " + s.ToString();
      return r;
    }
    uint32_t cf = edit.GetColumnFamily();
    if (!edit.GetBlobFileAdditions().empty() || !edit.GetBlobFileGarbages().empty()) {
      r.why_not = "the DB has blob files";
      return r;
    }
    if (edit.IsColumnFamilyAdd()) r.cf_names[cf] = edit.GetColumnFamilyName();
    if (edit.IsColumnFamilyDrop()) {
      r.cf_names.erase(cf);
      std::erase_if(r.live, [cf](const auto& e) { return e.second.cf == cf; });
    }
    for (const auto& deleted : edit.GetDeletedFiles()) r.live.erase(deleted.second);
    const auto& added = edit.GetNewFiles();
    for (size_t p = 0; p < added.size(); p++) {
      const auto& meta = added[p].second;
      if (meta.epoch_number == ROCKSDB_NAMESPACE::kUnknownEpochNumber) {
        r.why_not = "a table has no epoch number";
        return r;
      }
      r.live[meta.fd.GetNumber()] = Live{cf,
                                         added[p].first,
                                         meta.smallest.user_key().ToString(),
                                         meta.largest.user_key().ToString(),
                                         i,
                                         p};
    }
  }
  return r;
}

// The tables to keep (see the top of this file), or why none are chosen.
bool choose(const Replay& r, const Comparator* ucmp, const std::string& cf_name,
            const std::set<uint64_t>& input_numbers, std::set<uint64_t>* keep,
            std::string* why) {
  uint32_t cf = 0;
  std::string lo, hi;
  size_t inputs = 0;
  for (uint64_t number : input_numbers) {
    auto it = r.live.find(number);
    if (it == r.live.end()) {
      *why = "an input is not a live table";
      return false;
    }
    const Live& t = it->second;
    if (inputs > 0 && t.cf != cf) {
      *why = "the inputs are of more than one column family";
      return false;
    }
    if (inputs == 0 || ucmp->Compare(t.smallest, lo) < 0) lo = t.smallest;
    if (inputs == 0 || ucmp->Compare(t.largest, hi) > 0) hi = t.largest;
    cf = t.cf;
    inputs++;
    keep->insert(number);
  }
  auto name = r.cf_names.find(cf);
  if (inputs == 0 || name == r.cf_names.end() || name->second != cf_name) {
    *why = "the inputs are not live tables of column family " + cf_name;
    return false;
  }
  std::map<int, uint64_t> spare;  // a left-out table of each level
  std::set<int> levels_kept;
  size_t in_cf = 0;
  for (const auto& [number, t] : r.live) {
    if (t.cf != cf) continue;
    in_cf++;
    bool overlaps = ucmp->Compare(t.largest, lo) >= 0 && ucmp->Compare(t.smallest, hi) <= 0;
    if (keep->count(number) > 0 || t.level == 0 || overlaps) {
      keep->insert(number);
      levels_kept.insert(t.level);
    } else if (spare.count(t.level) == 0) {
      spare[t.level] = number;
    }
  }
  for (const auto& [level, number] : spare) {
    if (levels_kept.count(level) == 0) keep->insert(number);
  }
  if (keep->size() == inputs && in_cf > inputs) keep->insert(spare.begin()->second);
  return true;
}

// The records without the last adds of the tables not kept.
bool rewrite(const std::vector<std::string>& records, Replay& r,
             const std::set<uint64_t>& keep, std::string* out, std::string* why) {
  std::map<size_t, std::vector<size_t>> drops;  // record -> positions
  for (const auto& [number, t] : r.live) {
    if (keep.count(number) == 0) drops[t.record].push_back(t.position);
  }
  auto sink = std::make_unique<WritableFileWriter>(std::make_unique<StringSink>(out),
                                                   "MANIFEST", FileOptions());
  rlog::Writer writer(std::move(sink), /*log_number=*/0, /*recycle_log_files=*/false);
  WriteOptions wo;
  for (size_t i = 0; i < records.size(); i++) {
    auto d = drops.find(i);
    if (d == drops.end()) {
      if (!writer.AddRecord(wo, records[i]).ok()) {
        *why = "writing the trimmed MANIFEST failed";
        return false;
      }
      continue;
    }
    VersionEdit& edit = *r.edits[i];
    std::string same;
    if (!edit.EncodeTo(&same, /*ts_sz=*/0) || same != records[i]) {
      *why = "a record does not re-encode to its own bytes";
      return false;
    }
    // One pass, so that a snapshot record of many tables costs its length.
    auto& added = edit.GetMutableNewFiles();
    std::vector<bool> dropped(added.size(), false);
    for (size_t p : d->second) dropped[p] = true;
    VersionEdit::NewFiles kept;
    kept.reserve(added.size() - d->second.size());
    for (size_t p = 0; p < added.size(); p++) {
      if (!dropped[p]) kept.push_back(std::move(added[p]));
    }
    added.swap(kept);
    std::string encoded;
    if (!edit.EncodeTo(&encoded, /*ts_sz=*/0) || !writer.AddRecord(wo, encoded).ok()) {
      *why = "writing the trimmed MANIFEST failed";
      return false;
    }
  }
  if (!writer.Close(wo).ok()) {
    *why = "writing the trimmed MANIFEST failed";
    return false;
  }
  return true;
}

}  // namespace

namespace farm {

std::string trim_refusal(const ColumnFamilyOptions& o) {
  using ROCKSDB_NAMESPACE::kCompactionStyleLevel;
  using ROCKSDB_NAMESPACE::kCompactionStyleUniversal;
  if (o.comparator == nullptr || o.comparator->timestamp_size() != 0) {
    return "the comparator is unknown or has timestamps";
  }
  if (o.compaction_style != kCompactionStyleLevel &&
      o.compaction_style != kCompactionStyleUniversal) {
    return "the compaction style is neither level nor universal";
  }
  if (o.preclude_last_level_data_seconds > 0) {
    return "per-key placement (preclude_last_level_data_seconds) counts the proximal level";
  }
  if (o.compaction_style == kCompactionStyleLevel && o.level_compaction_dynamic_level_bytes &&
      (!o.compression_per_level.empty() || o.target_file_size_multiplier != 1)) {
    return "with dynamic level sizes, compression_per_level or target_file_size_multiplier "
           "depend on the base level, which the last level's size chooses";
  }
  if (o.enable_blob_files) return "blob files";
  return "";
}

std::unique_ptr<FSSequentialFile> string_file(std::shared_ptr<const std::string> data) {
  return std::make_unique<StringSource>(std::move(data));
}

Trimmed trim_manifest(std::shared_ptr<const std::string> manifest, const Comparator* ucmp,
                      const std::string& cf_name, const std::set<uint64_t>& inputs) {
  Trimmed t;
  std::vector<std::string> records;
  if (!read_records(std::move(manifest), &records, &t.why_not)) return t;
  Replay r = replay(records);
  t.live = r.live.size();
  if (!r.why_not.empty()) {
    t.why_not = r.why_not;
    return t;
  }
  std::set<uint64_t> keep;
  if (!choose(r, ucmp, cf_name, inputs, &keep, &t.why_not)) return t;
  t.kept = keep.size();
  if (t.kept == t.live) {
    t.why_not = "every live table is needed";
    return t;
  }
  if (!rewrite(records, r, keep, &t.bytes, &t.why_not)) t.bytes.clear();
  return t;
}

}  // namespace farm
