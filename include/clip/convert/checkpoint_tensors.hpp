#pragma once
// CheckpointTensors: the named tensors of a checkpoint, whatever files and containers hold them
// (safetensors, PyTorch zip / legacy / TorchScript, GGUF, several shards), as StoredTensors into
// the mapped files. It keeps every file open and mapped while the conversion reads, so memory
// holds only what is being converted, and remembers which tensors were read so the converter
// can list the ones the model does not use (position_ids buffers, optimizer state, ...).

#include <clip/error.hpp>
#include <clip/formats/gguf.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/stored_tensor.hpp>
#include <clip/formats/torch_checkpoint.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace clip::detail {

class CheckpointTensors {
 public:
  struct Entry {
    std::string name;    ///< after prefix stripping
    std::string source;  ///< the file it came from
    StoredTensor view;
    mutable bool used = false;
  };

  /// A safetensors file (every dtype of the specification is listed; only float ones can be read).
  void add_safetensors(const std::string& path) {
    auto file = std::make_shared<TensorFile>(path);
    kinds_.insert("safetensors");
    for (const TensorInfo& tensor : file->tensors()) {
      StoredTensor view;
      view.dtype = tensor.dtype;
      view.shape = tensor.shape;
      view.stride = contiguous_strides(tensor.shape);
      view.storage = file->bytes(tensor);
      view.storage_numel = tensor.numel();
      add(tensor.name, std::move(view), path);
    }
    keep_.push_back(std::move(file));
  }

  /// A torch.save / torch.jit.save file: a state dict (bare or wrapped in "state_dict" / "model"),
  /// or a TorchScript module tree walked to its parameters and buffers.
  void add_torch(const std::string& path) {
    auto checkpoint = std::make_shared<TorchCheckpoint>(path);
    kinds_.insert(checkpoint->kind_name());
    const PickleValue& root = checkpoint->root();
    std::size_t before = entries_.size();
    if (root.is(PickleValue::Kind::Object)) {
      std::size_t budget = 1u << 20;
      walk_module(*checkpoint, root, "", 0, budget);
    } else if (root.is(PickleValue::Kind::Dict)) {
      add_state_dict(*checkpoint, unwrap_state_dict(root));
    } else {
      throw Error(path + ": holds a " + pickle_kind_name(root.kind) + ", not a state dict or a module");
    }
    if (entries_.size() == before) throw Error(path + ": holds no tensors");
    keep_.push_back(std::move(checkpoint));
  }

  /// Keeps a reader alive for views added by the caller (GGUF).
  void keep(std::shared_ptr<void> owner) { keep_.push_back(std::move(owner)); }
  void note_kind(const std::string& kind) { kinds_.insert(kind); }

  void add(std::string name, StoredTensor view, const std::string& source) {
    // Prefixes of training wrappers: DataParallel ("module."), torch.compile ("_orig_mod.").
    for (bool stripped = true; stripped;) {
      stripped = false;
      for (const char* prefix : {"module.", "_orig_mod."}) {
        const std::size_t length = std::char_traits<char>::length(prefix);
        if (name.compare(0, length, prefix) == 0) {
          name.erase(0, length);
          stripped = true;
        }
      }
    }
    if (index_.count(name)) throw Error(source + ": tensor '" + name + "' appears twice (in " + entries_[index_[name]].source + ")");
    index_[name] = entries_.size();
    entries_.push_back(Entry{name, source, std::move(view)});
  }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  const StoredTensor& view(const std::string& name) const { return locate(name).view; }
  const std::vector<std::int64_t>& shape(const std::string& name) const { return locate(name).view.shape; }

  /// Dimension `d` of a tensor's shape, with a clear error when the tensor has fewer.
  std::int64_t dim(const std::string& name, std::size_t d) const {
    const Entry& entry = locate(name);
    if (entry.view.shape.size() <= d)
      throw Error(entry.source + ": tensor '" + name + "' has shape of rank " + std::to_string(entry.view.shape.size()) +
                  ", expected at least " + std::to_string(d + 1));
    return entry.view.shape[d];
  }

  /// The tensor's values in C order as floats; marks it used.
  std::vector<float> read(const std::string& name) const {
    const Entry& entry = locate(name);
    std::vector<float> values(static_cast<std::size_t>(entry.view.numel()));
    read_stored_tensor(entry.view, values.data(), entry.source + ": tensor '" + name + "'");
    entry.used = true;
    return values;
  }

  /// Marks a tensor used that the conversion reads another way (the tokenizer's merges).
  void mark_used(const std::string& name) const {
    if (contains(name)) locate(name).used = true;
  }

  /// Number of consecutive blocks "<prefix>N." for N = 0, 1, ...
  int count_blocks(const std::string& prefix) const {
    int count = 0;
    while (true) {
      const std::string block = prefix + std::to_string(count) + ".";
      auto next = index_.lower_bound(block);
      if (next == index_.end() || next->first.rfind(block, 0) != 0) return count;
      ++count;
    }
  }

  const std::vector<Entry>& entries() const { return entries_; }
  std::string kinds() const {
    std::string text;
    for (const std::string& kind : kinds_) text += (text.empty() ? "" : ", ") + kind;
    return text;
  }
  std::string describe() const { return entries_.empty() ? std::string("checkpoint") : entries_.front().source; }

 private:
  const Entry& locate(const std::string& name) const {
    auto found = index_.find(name);
    if (found == index_.end()) throw Error(describe() + ": checkpoint has no tensor '" + name + "'");
    return entries_[found->second];
  }

  /// Training checkpoints wrap the weights: {"state_dict": ...} (open_clip, Lightning), {"model": ...}.
  static const PickleValue& unwrap_state_dict(const PickleValue& root) {
    const PickleValue* dict = &root;
    for (int level = 0; level < 2; ++level) {
      const PickleValue* inner = nullptr;
      for (const char* key : {"state_dict", "model", "model_state_dict", "module"}) {
        const PickleValue* value = dict->get(key);
        if (value && value->is(PickleValue::Kind::Dict)) {
          inner = value;
          break;
        }
      }
      if (!inner) break;
      dict = inner;
    }
    return *dict;
  }

  void add_state_dict(const TorchCheckpoint& checkpoint, const PickleValue& dict) {
    for (const auto& [key, value] : dict.entries) {
      if (!key->is(PickleValue::Kind::String) || !value->is(PickleValue::Kind::Tensor)) continue;
      add(key->text, checkpoint.view(*value->tensor, key->text), checkpoint.source());
    }
  }

  /// TorchScript: each module is an object whose state holds its parameters, buffers and
  /// submodules by attribute name; the class names are not used (they differ between files).
  void walk_module(const TorchCheckpoint& checkpoint, const PickleValue& module, const std::string& prefix, int depth,
                   std::size_t& budget) {
    if (depth > 64) throw Error(checkpoint.source() + ": modules nested more than 64 deep");
    for (const auto& [key, value] : module.entries) {
      if (budget-- == 0) throw Error(checkpoint.source() + ": module tree too large to walk");
      if (!key->is(PickleValue::Kind::String)) continue;
      const std::string name = prefix + key->text;
      if (value->is(PickleValue::Kind::Tensor)) add(name, checkpoint.view(*value->tensor, name), checkpoint.source());
      else if (value->is(PickleValue::Kind::Object)) walk_module(checkpoint, *value, name + ".", depth + 1, budget);
    }
  }

  std::vector<std::shared_ptr<void>> keep_;
  std::vector<Entry> entries_;
  std::map<std::string, std::size_t> index_;
  std::set<std::string> kinds_;
};

}  // namespace clip::detail
