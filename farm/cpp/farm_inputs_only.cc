// The table factory of a DB read over HTTP (docs/REMOTE_STORAGE.md, "What
// the secondary open reads").
//
// OpenAndCompact forces max_open_files=-1, so the table cache has infinite
// capacity, and the secondary open's point-in-time recovery builds each
// column family's version with VersionBuilder::LoadTableHandlers, which then
// opens every table of the version (footer, index, filter: the tail) before
// the compaction starts. Over HTTP that is one ranged read of every live SST
// of the DB per job, and the job's file list serves none but its inputs.
//
// So a worker's override wraps the column family's table factory: a table of
// the remote DB that the job may read (an input) opens through the real
// factory; any other opens as a NotAnInputTable, which reads nothing and
// answers every read with an error. OpenAndCompact also opens the default
// column family (a DB cannot open without it) with the factory its OPTIONS
// file names, which no override reaches; so a process that reads remote DBs
// also has every "BlockBasedTable" its OPTIONS files name created wrapped
// (shadow_block_based_table: a library of the default object registry,
// searched before RocksDB's own). The wrapper passes everything through for
// any path that is not below "/.farm-remote/". The compaction itself reads only its
// inputs: their data, properties (Compaction::InitInputTableProperties,
// CompactionJob::Prepare) and sizes for subcompaction boundaries; what it
// needs of other files (key ranges for grandparent cuts and the bottommost
// check) comes from the MANIFEST. Should RocksDB ever read a non-input
// table, the read fails, the attempt fails and the hoster compacts locally.

#include "farm_inputs_only.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "farm_remote_fs.h"
#include "file/random_access_file_reader.h"
#include "rocksdb/table_properties.h"
#include "rocksdb/utilities/object_registry.h"
#include "table/internal_iterator.h"
#include "table/table_reader.h"

using ROCKSDB_NAMESPACE::Arena;
using ROCKSDB_NAMESPACE::ColumnFamilyOptions;
using ROCKSDB_NAMESPACE::ConfigOptions;
using ROCKSDB_NAMESPACE::Customizable;
using ROCKSDB_NAMESPACE::DBOptions;
using ROCKSDB_NAMESPACE::GetContext;
using ROCKSDB_NAMESPACE::InternalIterator;
using ROCKSDB_NAMESPACE::ObjectLibrary;
using ROCKSDB_NAMESPACE::ObjectRegistry;
using ROCKSDB_NAMESPACE::RandomAccessFileReader;
using ROCKSDB_NAMESPACE::ReadOptions;
using ROCKSDB_NAMESPACE::Slice;
using ROCKSDB_NAMESPACE::SliceTransform;
using ROCKSDB_NAMESPACE::Status;
using ROCKSDB_NAMESPACE::TableBuilder;
using ROCKSDB_NAMESPACE::TableBuilderOptions;
using ROCKSDB_NAMESPACE::TableFactory;
using ROCKSDB_NAMESPACE::TableProperties;
using ROCKSDB_NAMESPACE::TableReader;
using ROCKSDB_NAMESPACE::TableReaderCaller;
using ROCKSDB_NAMESPACE::TableReaderOptions;
using ROCKSDB_NAMESPACE::WritableFileWriter;

namespace {

// A live table of the DB that is not an input of the job: known by its
// MANIFEST entry and size, never read.
class NotAnInputTable : public TableReader {
 public:
  explicit NotAnInputTable(std::string path)
      : path_(std::move(path)), properties_(std::make_shared<TableProperties>()) {}

  InternalIterator* NewIterator(const ReadOptions&, const SliceTransform*, Arena* arena,
                                bool, TableReaderCaller, size_t, bool) override {
    return ROCKSDB_NAMESPACE::NewErrorInternalIterator<Slice>(refused(), arena);
  }

  Status Get(const ReadOptions&, const Slice&, GetContext*, const SliceTransform*,
             bool) override {
    return refused();
  }

  uint64_t ApproximateOffsetOf(const ReadOptions&, const Slice&, TableReaderCaller) override {
    return 0;
  }

  uint64_t ApproximateSize(const ReadOptions&, const Slice&, const Slice&,
                           TableReaderCaller) override {
    return 0;
  }

  void SetupForCompaction() override {}

  // Empty: nothing of the table was read. The compaction reads only its
  // inputs' properties.
  std::shared_ptr<const TableProperties> GetTableProperties() const override {
    return properties_;
  }

  size_t ApproximateMemoryUsage() const override { return sizeof(*this) + path_.size(); }

 private:
  Status refused() const {
    return Status::NotSupported("not an input of this job: the worker may not read it", path_);
  }

  std::string path_;
  std::shared_ptr<const TableProperties> properties_;
};

class InputsOnlyTableFactory : public TableFactory {
 public:
  explicit InputsOnlyTableFactory(std::shared_ptr<TableFactory> inner)
      : inner_(std::move(inner)) {}

  // The wrapped factory's name: RocksDB and the override's description see
  // the column family's own table format.
  const char* Name() const override { return inner_->Name(); }
  const Customizable* Inner() const override { return inner_.get(); }
  const TableFactory* inner() const { return inner_.get(); }

  Status NewTableReader(const ReadOptions& ro, const TableReaderOptions& options,
                        std::unique_ptr<RandomAccessFileReader>&& file, uint64_t size,
                        std::unique_ptr<TableReader>* reader,
                        bool prefetch) const override {
    const std::string& path = file->file_name();
    if (farm::is_remote_path(path) && !farm::remote_file_readable(path)) {
      reader->reset(new NotAnInputTable(path));
      return Status::OK();
    }
    return inner_->NewTableReader(ro, options, std::move(file), size, reader, prefetch);
  }

  TableBuilder* NewTableBuilder(const TableBuilderOptions& options,
                                WritableFileWriter* file) const override {
    return inner_->NewTableBuilder(options, file);
  }

  std::unique_ptr<TableFactory> Clone() const override {
    std::shared_ptr<TableFactory> inner = inner_->Clone();
    return std::make_unique<InputsOnlyTableFactory>(std::move(inner));
  }

  bool IsDeleteRangeSupported() const override { return inner_->IsDeleteRangeSupported(); }

  Status ValidateOptions(const DBOptions& db, const ColumnFamilyOptions& cf) const override {
    return inner_->ValidateOptions(db, cf);
  }

  std::string GetPrintableOptions() const override { return inner_->GetPrintableOptions(); }

  // Configured, prepared and printed as the wrapped factory is (a wrapper
  // the registry creates is configured from the OPTIONS file's text).
  Status PrepareOptions(const ConfigOptions& config) override {
    return inner_->PrepareOptions(config);
  }

 protected:
  Status ConfigureOptions(const ConfigOptions& config,
                          const std::unordered_map<std::string, std::string>& options,
                          std::unordered_map<std::string, std::string>* unused) override {
    return inner_->ConfigureFromMap(config, options, unused);
  }

  std::string SerializeOptions(const ConfigOptions& config,
                               const std::string& header) const override {
    return inner_->ToString(config, header);
  }

 private:
  std::shared_ptr<TableFactory> inner_;
};

}  // namespace

namespace farm {

std::shared_ptr<TableFactory> inputs_only(std::shared_ptr<TableFactory> inner) {
  if (inner == nullptr || dynamic_cast<const InputsOnlyTableFactory*>(inner.get()) != nullptr) {
    return inner;
  }
  return std::make_shared<InputsOnlyTableFactory>(std::move(inner));
}

void shadow_block_based_table() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    std::shared_ptr<ObjectLibrary> library =
        ObjectRegistry::Default()->AddLibrary("farm-inputs-only");
    library->AddFactory<TableFactory>(
        TableFactory::kBlockBasedTableName(),
        [](const std::string&, std::unique_ptr<TableFactory>* guard, std::string*) {
          std::shared_ptr<TableFactory> real(ROCKSDB_NAMESPACE::NewBlockBasedTableFactory());
          guard->reset(new InputsOnlyTableFactory(std::move(real)));
          return guard->get();
        });
  });
}

const TableFactory* described_factory(const TableFactory* factory) noexcept {
  const auto* wrapper = dynamic_cast<const InputsOnlyTableFactory*>(factory);
  return wrapper != nullptr ? wrapper->inner() : factory;
}

}  // namespace farm
