#pragma once
// Small writers of the binary formats the readers parse, for tests and fuzz seeds: pickles op
// by op, stored ZIP archives (optionally with ZIP64 records), torch.save-shaped checkpoints
// (zip and legacy) and GGUF files. Written from the format descriptions, independently of the
// readers under test.

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace clip_test {

inline void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

/// A pickle, opcode by opcode.
struct Pickle {
  std::string bytes;
  Pickle& proto(int p) { bytes += '\x80'; bytes += static_cast<char>(p); return *this; }
  Pickle& op(char c) { bytes += c; return *this; }
  Pickle& raw(const std::string& s) { bytes += s; return *this; }
  Pickle& global(const std::string& module, const std::string& name) { bytes += 'c' + module + "\n" + name + "\n"; return *this; }
  Pickle& str(const std::string& s) { bytes += 'X'; put_le(bytes, s.size(), 4); bytes += s; return *this; }
  Pickle& integer(std::int64_t v) {
    if (v >= 0 && v < 256) { bytes += 'K'; bytes += static_cast<char>(v); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { bytes += 'J'; put_le(bytes, static_cast<std::uint32_t>(v), 4); }
    else { bytes += '\x8a'; bytes += '\x08'; put_le(bytes, static_cast<std::uint64_t>(v), 8); }
    return *this;
  }
  Pickle& mark() { return op('('); }
  Pickle& tuple() { return op('t'); }
  Pickle& empty_tuple() { return op(')'); }
  Pickle& reduce() { return op('R'); }
  Pickle& stop() { return op('.'); }
  Pickle& ints(const std::vector<std::int64_t>& values) {
    mark();
    for (std::int64_t v : values) integer(v);
    return tuple();
  }
  /// torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, std::int64_t numel, std::int64_t offset,
                 const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark().str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).tuple().op('Q');
    integer(offset).ints(size).ints(stride).op('\x89');
    global("collections", "OrderedDict").empty_tuple().reduce();
    tuple().reduce();
    return *this;
  }
};

struct ZipFileEntry {
  std::string name;
  std::string data;
  std::uint16_t method = 0;
  std::uint16_t flags = 0;
};

/// A ZIP archive of stored entries as torch writes them (data 64-byte aligned through the local
/// extra field). With zip64, sizes and offsets go into ZIP64 extra fields and end records.
inline std::string make_zip(const std::vector<ZipFileEntry>& entries, bool zip64 = false) {
  std::string out, central;
  for (const ZipFileEntry& entry : entries) {
    const std::uint64_t offset = out.size();
    std::string local;
    put_le(local, 0x04034b50, 4);
    put_le(local, zip64 ? 45 : 20, 2);
    put_le(local, entry.flags, 2);
    put_le(local, entry.method, 2);
    put_le(local, 0, 4);  // time, date
    put_le(local, 0, 4);  // crc (not checked by torch's reader for stored data, nor ours)
    put_le(local, zip64 ? 0xFFFFFFFFu : entry.data.size(), 4);
    put_le(local, zip64 ? 0xFFFFFFFFu : entry.data.size(), 4);
    put_le(local, entry.name.size(), 2);
    const std::size_t fixed = local.size() + 2 + entry.name.size();
    std::size_t pad = (64 - (offset + fixed + 4) % 64) % 64;
    put_le(local, 4 + pad, 2);
    local += entry.name;
    put_le(local, 0xFA57, 2);  // torch's padding record id
    put_le(local, pad, 2);
    local.append(pad, 'Z');
    out += local;
    out += entry.data;

    put_le(central, 0x02014b50, 4);
    put_le(central, zip64 ? 45 : 20, 2);
    put_le(central, zip64 ? 45 : 20, 2);
    put_le(central, entry.flags, 2);
    put_le(central, entry.method, 2);
    put_le(central, 0, 4);
    put_le(central, 0, 4);
    put_le(central, zip64 ? 0xFFFFFFFFu : entry.data.size(), 4);
    put_le(central, zip64 ? 0xFFFFFFFFu : entry.data.size(), 4);
    put_le(central, entry.name.size(), 2);
    put_le(central, zip64 ? 28 : 0, 2);
    put_le(central, 0, 2);  // comment
    put_le(central, 0, 2);  // disk
    put_le(central, 0, 2);
    put_le(central, 0, 4);
    put_le(central, zip64 ? 0xFFFFFFFFu : offset, 4);
    central += entry.name;
    if (zip64) {
      put_le(central, 0x0001, 2);
      put_le(central, 24, 2);
      put_le(central, entry.data.size(), 8);
      put_le(central, entry.data.size(), 8);
      put_le(central, offset, 8);
    }
  }
  const std::uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const std::uint64_t record = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);
    put_le(out, 0, 4);
    put_le(out, entries.size(), 8);
    put_le(out, entries.size(), 8);
    put_le(out, central.size(), 8);
    put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4);
    put_le(out, 0, 4);
    put_le(out, record, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 2);
  put_le(out, 0, 2);
  put_le(out, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(out, zip64 ? 0xFFFF : entries.size(), 2);
  put_le(out, zip64 ? 0xFFFFFFFFu : central.size(), 4);
  put_le(out, zip64 ? 0xFFFFFFFFu : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

inline std::string float_bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// A torch.save-shaped zip: archive/data.pkl, archive/data/<key> storages, byteorder, version.
inline std::string make_torch_zip(const std::string& data_pkl, const std::vector<std::pair<std::string, std::string>>& storages,
                                  bool zip64 = false, const std::string& root = "archive") {
  std::vector<ZipFileEntry> entries{{root + "/data.pkl", data_pkl}, {root + "/byteorder", "little"}};
  for (const auto& [key, bytes] : storages) entries.push_back({root + "/data/" + key, bytes});
  entries.push_back({root + "/version", "3\n"});
  return make_zip(entries, zip64);
}

/// A state dict pickle {name: F32 tensor of storage key} with contiguous shapes.
struct NamedTensor {
  std::string name;
  std::string key;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> stride;  ///< empty: contiguous
  std::int64_t numel = 0;            ///< of the storage
};

inline std::string state_dict_pickle(const std::vector<NamedTensor>& tensors, const std::string& storage_type = "FloatStorage") {
  Pickle p;
  p.proto(2).global("collections", "OrderedDict").empty_tuple().reduce().mark();
  for (const NamedTensor& t : tensors) {
    std::vector<std::int64_t> stride = t.stride;
    if (stride.empty()) {
      stride.assign(t.shape.size(), 1);
      for (std::size_t d = t.shape.size(); d-- > 1;) stride[d - 1] = stride[d] * t.shape[d];
    }
    p.str(t.name).tensor(storage_type, t.key, t.numel, 0, t.shape, stride);
  }
  p.op('u').stop();
  return p.bytes;
}

/// The legacy (pre-1.6) torch.save layout: magic, protocol, system info, object, keys, storages.
inline std::string make_legacy(const std::string& object_pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                               int element_size = 4) {
  std::string out("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 15);
  Pickle protocol;
  protocol.proto(2).integer(1001).stop();
  out += protocol.bytes;
  Pickle info;
  info.proto(2).op('}').mark().str("protocol_version").integer(1001).str("little_endian").op('\x88').op('u').stop();
  out += info.bytes;
  out += object_pickle;
  Pickle keys;
  keys.proto(2).op(']').mark();
  for (const auto& storage : storages) keys.str(storage.first);
  keys.op('e').stop();
  out += keys.bytes;
  for (const auto& [key, bytes] : storages) {
    put_le(out, bytes.size() / element_size, 8);
    out += bytes;
  }
  return out;
}

/// A GGUF v3 file: metadata (key, type, encoded value) and tensors (name, ne, ggml type, bytes).
struct GgufTensorSpec {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t type;
  std::string data;
};

inline std::string gguf_string(const std::string& s) {
  std::string out;
  put_le(out, s.size(), 8);
  return out + s;
}

inline std::string make_gguf(const std::vector<std::pair<std::string, std::pair<std::uint32_t, std::string>>>& metadata,
                             const std::vector<GgufTensorSpec>& tensors, std::uint32_t version = 3) {
  std::string out = "GGUF";
  put_le(out, version, 4);
  put_le(out, tensors.size(), 8);
  put_le(out, metadata.size(), 8);
  for (const auto& [key, value] : metadata) {
    out += gguf_string(key);
    put_le(out, value.first, 4);
    out += value.second;
  }
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (const GgufTensorSpec& t : tensors) {
    out += gguf_string(t.name);
    put_le(out, t.ne.size(), 4);
    for (std::uint64_t d : t.ne) put_le(out, d, 8);
    put_le(out, t.type, 4);
    put_le(out, offset, 8);
    offsets.push_back(offset);
    offset += (t.data.size() + 31) / 32 * 32;
  }
  out.append((32 - out.size() % 32) % 32, '\0');
  for (const GgufTensorSpec& t : tensors) {
    out += t.data;
    out.append((32 - t.data.size() % 32) % 32, '\0');
  }
  return out;
}

}  // namespace clip_test
