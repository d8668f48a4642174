#pragma once
// TorchCheckpoint: what torch.save and torch.jit.save write, read as data.
//  - the zip format (torch.save since 1.6, and TorchScript archives): `<root>/data.pkl` holds the
//    object, its tensors name storages by persistent id ('storage', torch.FloatStorage, key,
//    location, numel) whose bytes are the stored entry `<root>/data/<key>`; `<root>/byteorder`
//    (little, when present) and `<root>/version` describe the encoding;
//  - the legacy format (torch.save(..., _use_new_zipfile_serialization=False), PyTorch < 1.6):
//    five pickles in a row (magic number, protocol version, system info, the object, the list of
//    storage keys), then each storage as an 8-byte element count and its bytes.
// The pickles go through PickleReader (allow-listed globals only); tensors become StoredTensors
// into the mapped file, checked against their storage. Nothing is copied or executed.

#include <clip/detail/mapped_file.hpp>
#include <clip/error.hpp>
#include <clip/formats/pickle.hpp>
#include <clip/formats/stored_tensor.hpp>
#include <clip/formats/zip.hpp>

#include <map>
#include <memory>
#include <string>

namespace clip {

class TorchCheckpoint {
 public:
  enum class Kind { Zip, TorchScript, Legacy };

  /// Maps `path` and reads its object; throws clip::Error naming the file.
  explicit TorchCheckpoint(const std::string& path) : file_(std::make_unique<detail::MappedFile>(path)), source_(path) {
    parse(file_->data(), file_->size());
  }

  /// Reads a checkpoint held in memory (which must outlive this object); `source` names it.
  TorchCheckpoint(const std::uint8_t* data, std::size_t size, std::string source) : source_(std::move(source)) {
    parse(data, size);
  }

  /// True when the bytes start like something torch.save writes (a zip, or a legacy pickle).
  static bool looks_like_torch(const std::uint8_t* data, std::size_t size) {
    return ZipArchive::looks_like_zip(data, size) || (size >= 2 && data[0] == 0x80 && data[1] <= 5);
  }

  Kind kind() const { return kind_; }
  const char* kind_name() const {
    return kind_ == Kind::Zip ? "PyTorch zip checkpoint" : kind_ == Kind::TorchScript ? "TorchScript archive"
                                                                                      : "PyTorch legacy checkpoint";
  }
  const std::string& source() const { return source_; }
  const PickleValue& root() const { return *root_; }
  int version() const { return version_; }

  /// The checked view of a tensor record found in root(); `name` is for errors.
  StoredTensor view(const PickleTensor& tensor, const std::string& name) const {
    const PickleStorage& storage = *tensor.storage->storage;
    auto found = storages_.find(storage.key);
    if (found == storages_.end()) throw Error(source_ + ": tensor '" + name + "' names storage '" + storage.key + "', which has no data");
    StoredTensor view;
    view.dtype = storage.dtype;
    view.shape = tensor.shape;
    view.stride = tensor.stride;
    view.offset = tensor.offset + static_cast<std::int64_t>(found->second.element_offset);
    view.storage = found->second.data;
    view.storage_numel = found->second.numel;
    check_stored_tensor(view, source_ + ": tensor '" + name + "'");
    return view;
  }

 private:
  struct StorageBytes {
    const std::uint8_t* data = nullptr;
    std::uint64_t numel = 0;          ///< elements available from `data`
    std::uint64_t element_offset = 0; ///< legacy views of a larger storage
  };

  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }

  void parse(const std::uint8_t* data, std::size_t size) {
    if (ZipArchive::looks_like_zip(data, size)) return parse_zip(data, size);
    if (size >= 2 && data[0] == 0x80) return parse_legacy(data, size);
    if (size >= 262 && std::memcmp(data + 257, "ustar", 5) == 0)
      fail("a tar checkpoint (PyTorch < 0.4) is not supported; re-save it with a current torch.save");
    fail("not a PyTorch checkpoint (neither a zip archive nor a pickle)");
  }

  /// The persistent id of a storage: ('storage', storage type, key, location, numel[, view]).
  std::shared_ptr<PickleValue> storage_record(const PickleValue& id, std::string& view_key,
                                              std::uint64_t& view_offset) const {
    using K = PickleValue::Kind;
    if (!id.is(K::Tuple) || id.items.size() < 5 || !id.items[0]->is(K::String) || id.items[0]->text != "storage")
      fail("persistent id is not a ('storage', type, key, location, size) tuple");
    const PickleValue& type = *id.items[1];
    auto record = std::make_shared<PickleValue>();
    record->kind = K::Storage;
    record->storage = std::make_unique<PickleStorage>();
    if (!type.is(K::Global) || !torch_storage_dtype(type.text, record->storage->dtype))
      fail("persistent id names storage type '" + (type.is(K::Global) ? type.text : std::string(pickle_kind_name(type.kind))) +
           "', not one of torch's storage types");
    if (!id.items[2]->is(K::String)) fail("storage key is not a string");
    record->storage->key = id.items[2]->text;
    if (id.items[3]->is(K::String)) record->storage->location = id.items[3]->text;
    if (!id.items[4]->is(K::Int) || id.items[4]->big_integer || id.items[4]->integer < 0)
      fail("storage '" + record->storage->key + "' has an invalid element count");
    record->storage->numel = static_cast<std::uint64_t>(id.items[4]->integer);
    view_key.clear();
    if (id.items.size() >= 6 && id.items[5]->is(K::Tuple)) {
      // Legacy (view_key, offset, size): a view of the root storage.
      const auto& v = id.items[5]->items;
      if (v.size() < 3 || !v[0]->is(K::String) || !v[1]->is(K::Int) || v[1]->integer < 0)
        fail("storage '" + record->storage->key + "' has an invalid view");
      view_key = v[0]->text;
      view_offset = static_cast<std::uint64_t>(v[1]->integer);
    }
    return record;
  }

  void parse_zip(const std::uint8_t* data, std::size_t size) {
    archive_ = std::make_unique<ZipArchive>(data, size, source_);
    std::string root;
    for (const ZipEntry& entry : archive_->entries()) {
      const std::size_t slash = entry.name.find('/');
      if (slash != std::string::npos && entry.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
        root = entry.name.substr(0, slash + 1);
        break;
      }
    }
    if (root.empty()) {
      for (const ZipEntry& entry : archive_->entries())
        if (entry.name.size() >= 10 && entry.name.compare(entry.name.size() - 10, 10, "model.json") == 0)
          fail("an old TorchScript archive (model.json, PyTorch < 1.4) is not supported; re-save it with torch.jit.save");
      fail("a zip archive without <name>/data.pkl: not a PyTorch checkpoint");
    }
    if (const ZipEntry* byteorder = archive_->find(root + "byteorder")) {
      const std::string order = archive_->text(*byteorder);
      if (order != "little") fail("byteorder is '" + order.substr(0, 16) + "'; only little-endian checkpoints are supported");
    }
    if (const ZipEntry* version = archive_->find(root + "version")) {
      const std::string text = archive_->text(*version).substr(0, 16);
      version_ = std::atoi(text.c_str());
      if (version_ < 1 || version_ > 10) fail("unsupported archive version '" + text + "'");
    }
    const ZipEntry* pickle = archive_->find(root + "data.pkl");
    auto load = [&](const PickleValue& id) -> PickleRef {
      std::string view_key;
      std::uint64_t view_offset = 0;
      PickleRef record = storage_record(id, view_key, view_offset);
      PickleStorage& storage = *record->storage;
      if (!storages_.count(storage.key)) {
        const ZipEntry* entry = archive_->find(root + "data/" + storage.key);
        if (!entry) fail("storage '" + storage.key + "' has no entry " + root + "data/" + storage.key);
        std::uint64_t needed = 0;
        if (!detail::checked_multiply(storage.numel, dtype_size(storage.dtype), needed) || needed > entry->size)
          fail("storage '" + storage.key + "' claims " + std::to_string(storage.numel) + " " + dtype_name(storage.dtype) +
               " elements, its entry has " + std::to_string(entry->size) + " bytes");
        storages_[storage.key] = StorageBytes{archive_->data(*entry), storage.numel, 0};
      } else if (storages_[storage.key].numel < storage.numel) {
        fail("storage '" + storage.key + "' is named with different sizes");
      }
      return record;
    };
    PickleReader reader(archive_->data(*pickle), static_cast<std::size_t>(pickle->size), source_ + " (" + pickle->name + ")", load);
    root_ = reader.read();
    kind_ = root_->is(PickleValue::Kind::Object) ? Kind::TorchScript : Kind::Zip;
  }

  void parse_legacy(const std::uint8_t* data, std::size_t size) {
    using K = PickleValue::Kind;
    std::size_t position = 0;
    auto next_pickle = [&](const char* what, PickleReader::PersistentLoad load) {
      PickleReader reader(data + position, size - position, source_ + " (" + what + ")", std::move(load));
      PickleRef value = reader.read();
      position += reader.position();
      return value;
    };
    // Magic number 0x1950a86a20f9469cfc6c: a LONG too big for int64, so check its bytes.
    static const std::uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    if (size < sizeof magic || std::memcmp(data, magic, sizeof magic) != 0)
      fail("a pickle that is not a PyTorch checkpoint (no legacy magic number); clip reads torch.save files only");
    position = sizeof magic;
    const PickleRef protocol = next_pickle("protocol version", {});
    if (!protocol->is(K::Int) || protocol->integer != 1001)
      fail("legacy protocol version is not 1001");
    const PickleRef info = next_pickle("system info", {});
    if (info->is(K::Dict)) {
      const PickleValue* little = info->get("little_endian");
      if (little && little->is(K::Bool) && !little->boolean) fail("a big-endian legacy checkpoint is not supported");
    }
    struct Claimed {
      DType dtype;
      std::uint64_t numel;
    };
    std::map<std::string, Claimed> claimed;
    std::vector<std::pair<std::string, std::pair<std::string, std::uint64_t>>> views;  // key -> (root key, offset)
    auto load = [&](const PickleValue& id) -> PickleRef {
      std::string view_key;
      std::uint64_t view_offset = 0;
      PickleRef record = storage_record(id, view_key, view_offset);
      const PickleStorage& storage = *record->storage;
      auto [it, fresh] = claimed.emplace(storage.key, Claimed{storage.dtype, storage.numel});
      if (!fresh && (it->second.dtype != storage.dtype || it->second.numel != storage.numel))
        fail("storage '" + storage.key + "' is named with different types or sizes");
      if (!view_key.empty()) {
        // The tensor reads the view; keep the root storage's key in the record and shift.
        views.push_back({view_key, {storage.key, view_offset}});
        record->storage->key = view_key;
      }
      return record;
    };
    root_ = next_pickle("object", load);
    const PickleRef keys = next_pickle("storage keys", {});
    if (!keys->is(K::List)) fail("legacy storage key list is not a list");
    for (const PickleRef& key : keys->items) {
      if (!key->is(K::String)) fail("legacy storage key is not a string");
      auto found = claimed.find(key->text);
      if (found == claimed.end()) fail("legacy storage '" + key->text + "' is not used by any tensor");
      detail::ByteReader in(data, size, source_);
      in.seek(position, "legacy storage");
      const std::uint64_t numel = in.u64("legacy storage size");
      std::uint64_t bytes = 0;
      if (!detail::checked_multiply(numel, dtype_size(found->second.dtype), bytes) || bytes > in.remaining())
        fail("legacy storage '" + key->text + "' claims " + std::to_string(numel) + " elements, " +
             std::to_string(in.remaining()) + " bytes remain in the file");
      if (numel < found->second.numel) fail("legacy storage '" + key->text + "' is smaller than its tensors claim");
      storages_[key->text] = StorageBytes{in.data() + in.position(), numel, 0};
      position = in.position() + static_cast<std::size_t>(bytes);
    }
    for (const auto& [view_key, target] : views) {
      auto base = storages_.find(target.first);
      if (base == storages_.end()) fail("legacy storage view '" + view_key + "' of a storage with no data");
      if (target.second > base->second.numel) fail("legacy storage view '" + view_key + "' starts past its storage");
      StorageBytes view = base->second;
      view.element_offset = target.second;
      storages_[view_key] = view;
    }
    kind_ = Kind::Legacy;
  }

  std::unique_ptr<detail::MappedFile> file_;
  std::unique_ptr<ZipArchive> archive_;
  std::string source_;
  PickleRef root_;
  Kind kind_ = Kind::Zip;
  int version_ = 0;
  std::map<std::string, StorageBytes> storages_;
};

}  // namespace clip
