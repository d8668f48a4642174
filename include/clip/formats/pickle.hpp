#pragma once
// A pickle *data* reader: it builds a tree of plain values (None, bool, int, float, str, bytes,
// tuple, list, dict, and a few PyTorch records) from the opcodes of protocols 0-5 that PyTorch
// writes. It is not an interpreter: a global is only a name, and only the allow-listed ones
// below may be called (REDUCE) or instantiated; anything else is an error naming the global.
// Nothing in the file is ever executed.
//
// Bounds, so a hostile pickle ends in clip::Error and not in memory exhaustion or a crash:
// - every value costs at least one opcode byte, and the count of values is capped;
// - containers may not hold themselves or be changed once placed in another (no cycles), and
//   nesting is capped (max_depth), so walking or freeing the tree cannot overflow the stack;
// - memo indices go into a map, never into an array sized by the file.
//
// Globals understood (the rest of PyTorch's checkpoint machinery is data):
//   collections.OrderedDict                       -> dict
//   torch._utils._rebuild_tensor_v2 / _rebuild_tensor, torch._utils._rebuild_parameter
//   (and _rebuild_parameter_with_state)           -> a tensor record (storage, offset, size, stride)
//   torch.<Type>Storage                           -> a storage type in a persistent id
//   torch.Size                                    -> tuple
//   torch.jit._pickle.build_*list, restore_type_tag (TorchScript archives) -> their argument
//   _codecs.encode(str, "latin1")                 -> bytes (how protocol 2 writes bytes)
//   __torch__.* classes (TorchScript modules)     -> an object holding its state (BUILD)

#include <clip/error.hpp>
#include <clip/formats/detail/bytes.hpp>
#include <clip/formats/dtype.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clip {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

/// A tensor as _rebuild_tensor_v2 describes it: a view (offset, size, stride in elements) of a
/// storage given by its persistent id.
struct PickleTensor {
  PickleRef storage;  ///< the persistent id's resolved value (kind Storage)
  std::int64_t offset = 0;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> stride;
};

/// A storage named by a persistent id ('storage', torch.FloatStorage, key, location, numel).
struct PickleStorage {
  std::string key;
  DType dtype = DType::F32;
  std::string location;
  std::uint64_t numel = 0;
};

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Set, Global, Object, Tensor, Storage };
  Kind kind = Kind::None;
  bool boolean = false;
  std::int64_t integer = 0;
  bool big_integer = false;  ///< an int outside int64 (value not kept)
  double floating = 0;
  std::string text;          ///< String, Bytes; Global/Object: "module.name"
  std::vector<PickleRef> items;                            ///< Tuple, List, Set; Object: constructor args
  std::vector<std::pair<PickleRef, PickleRef>> entries;   ///< Dict; Object: its state when a dict
  PickleRef state;                                         ///< Object: the BUILD state when not a dict
  std::unique_ptr<PickleTensor> tensor;
  std::unique_ptr<PickleStorage> storage;
  int depth = 1;        ///< nesting depth of this value
  bool placed = false;  ///< inside a container already: may no longer change

  bool is(Kind k) const { return kind == k; }

  /// The dict value for a string key, or nullptr.
  const PickleValue* get(const std::string& key) const {
    for (const auto& [k, v] : entries)
      if (k->kind == Kind::String && k->text == key) return v.get();
    return nullptr;
  }
};

inline const char* pickle_kind_name(PickleValue::Kind kind) {
  using K = PickleValue::Kind;
  switch (kind) {
    case K::None: return "None";
    case K::Bool: return "bool";
    case K::Int: return "int";
    case K::Float: return "float";
    case K::String: return "str";
    case K::Bytes: return "bytes";
    case K::Tuple: return "tuple";
    case K::List: return "list";
    case K::Dict: return "dict";
    case K::Set: return "set";
    case K::Global: return "global";
    case K::Object: return "object";
    case K::Tensor: return "tensor";
    case K::Storage: return "storage";
  }
  return "?";
}

/// The storage types PyTorch names in persistent ids, and their element types.
inline bool torch_storage_dtype(const std::string& global, DType& dtype) {
  static const std::pair<const char*, DType> known[] = {
      {"torch.FloatStorage", DType::F32},   {"torch.HalfStorage", DType::F16},  {"torch.BFloat16Storage", DType::BF16},
      {"torch.DoubleStorage", DType::F64},  {"torch.LongStorage", DType::I64},  {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},   {"torch.CharStorage", DType::I8},   {"torch.ByteStorage", DType::U8},
      {"torch.BoolStorage", DType::BOOL},
  };
  for (const auto& [name, value] : known) {
    if (global == name) {
      dtype = value;
      return true;
    }
  }
  return false;
}

/// Far above what real checkpoints need (a ViT-L TorchScript data.pkl holds ~10^5 values), far
/// below what would exhaust memory (a value takes ~200 bytes).
struct PickleLimits {
  int max_depth = 100;                 ///< nesting of containers
  std::size_t max_values = 1u << 21;   ///< values created in one pickle
  std::size_t max_memo = 1u << 21;     ///< memo entries
  std::size_t max_stack = 1u << 21;    ///< values on the stack at once
};

/// Reads one pickle from `data` (up to its STOP). `persistent_load` turns a persistent id (a
/// tuple) into a value, typically a Storage; without it persistent ids are errors.
class PickleReader {
 public:
  using PersistentLoad = std::function<PickleRef(const PickleValue& id)>;

  PickleReader(const std::uint8_t* data, std::size_t size, std::string source, PersistentLoad persistent_load = {},
               PickleLimits limits = {})
      : in_(data, size, std::move(source)), persistent_load_(std::move(persistent_load)), limits_(limits) {}

  /// The value the pickle holds; the reader's position is then just past STOP.
  PickleRef read() {
    while (true) {
      const std::uint8_t op = in_.u8("opcode");
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail("pickle ends with " + std::to_string(stack_.size()) + " values on its stack (expected one)");
    PickleRef result = std::move(stack_.back());
    stack_.clear();
    memo_.clear();
    return result;
  }

  std::size_t position() const { return in_.position(); }

 private:
  using Kind = PickleValue::Kind;

  [[noreturn]] void fail(const std::string& what) const {
    in_.fail("pickle: " + what + " (at byte " + std::to_string(in_.position()) + ")");
  }

  PickleRef make(Kind kind) {
    if (++values_ > limits_.max_values) fail("more than " + std::to_string(limits_.max_values) + " values");
    auto value = std::make_shared<PickleValue>();
    value->kind = kind;
    return value;
  }
  PickleRef make_int(std::int64_t v) {
    PickleRef value = make(Kind::Int);
    value->integer = v;
    return value;
  }
  PickleRef make_text(Kind kind, std::string text) {
    PickleRef value = make(kind);
    value->text = std::move(text);
    return value;
  }

  void push(PickleRef value) {
    if (stack_.size() >= limits_.max_stack) fail("more than " + std::to_string(limits_.max_stack) + " values on the stack");
    stack_.push_back(std::move(value));
  }
  PickleRef pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    PickleRef value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  PickleRef& top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                                 std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }

  /// Puts `child` into `container`: refuses cycles and changes to placed containers, tracks depth.
  void place(PickleValue& container, const PickleRef& child) {
    if (container.placed) fail("a " + std::string(pickle_kind_name(container.kind)) + " is changed after being used (recursive structures are not supported)");
    if (child.get() == &container) fail("a container holds itself");
    child->placed = true;
    if (child->depth + 1 > container.depth) container.depth = child->depth + 1;
    if (container.depth > limits_.max_depth) fail("nesting deeper than " + std::to_string(limits_.max_depth));
  }
  PickleRef make_sequence(Kind kind, std::vector<PickleRef> items) {
    PickleRef value = make(kind);
    for (const PickleRef& item : items) place(*value, item);
    value->items = std::move(items);
    return value;
  }
  void set_items(PickleValue& dict, std::vector<PickleRef>& items) {
    if (!dict.is(Kind::Dict)) fail("SETITEM(S) on a " + std::string(pickle_kind_name(dict.kind)) + ", not a dict");
    if (items.size() % 2) fail("SETITEMS with an odd number of values");
    for (std::size_t i = 0; i < items.size(); i += 2) {
      place(dict, items[i]);
      place(dict, items[i + 1]);
      dict.entries.emplace_back(std::move(items[i]), std::move(items[i + 1]));
    }
  }
  void append_items(PickleValue& list, std::vector<PickleRef>& items) {
    if (!list.is(Kind::List) && !list.is(Kind::Set))
      fail("APPEND(S) on a " + std::string(pickle_kind_name(list.kind)) + ", not a list");
    for (PickleRef& item : items) {
      place(list, item);
      list.items.push_back(std::move(item));
    }
  }

  std::string read_line(const char* what) {
    const std::size_t start = in_.position();
    const std::uint8_t* begin = in_.data() + start;
    const void* newline = std::memchr(begin, '\n', in_.remaining());
    if (!newline) fail(std::string("unterminated ") + what);
    const std::size_t length = static_cast<std::size_t>(static_cast<const std::uint8_t*>(newline) - begin);
    in_.take(length + 1, what);
    return std::string(reinterpret_cast<const char*>(begin), length);
  }

  static bool parse_decimal(const std::string& text, std::int64_t& value) {
    std::size_t i = 0;
    bool negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
    if (i == text.size()) return false;
    std::uint64_t magnitude = 0;
    for (; i < text.size(); ++i) {
      if (text[i] == 'L' && i + 1 == text.size()) break;  // protocol 0 longs end in L
      if (text[i] < '0' || text[i] > '9') return false;
      if (magnitude > (UINT64_MAX - 9) / 10) return false;
      magnitude = magnitude * 10 + static_cast<std::uint64_t>(text[i] - '0');
    }
    if (magnitude > static_cast<std::uint64_t>(INT64_MAX) + (negative ? 1 : 0)) return false;
    value = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
    return true;
  }

  PickleRef decimal_int(const std::string& text) {
    if (text == "00") return make_bool(false);  // protocol 0's False / True
    if (text == "01") return make_bool(true);
    std::int64_t value = 0;
    if (!parse_decimal(text, value)) {
      PickleRef big = make(Kind::Int);
      big->big_integer = true;
      return big;
    }
    return make_int(value);
  }
  PickleRef make_bool(bool b) {
    PickleRef value = make(Kind::Bool);
    value->boolean = b;
    return value;
  }

  /// LONG1 / LONG4: little-endian two's complement of `length` bytes.
  PickleRef binary_long(std::uint64_t length) {
    const std::uint8_t* bytes = in_.take(length, "long");
    if (length > 8) {
      // Fits in int64 only when the extra bytes are pure sign extension.
      bool fits = true;
      const std::uint8_t sign = (bytes[length - 1] & 0x80) ? 0xFF : 0x00;
      for (std::uint64_t i = 8; i < length; ++i) fits = fits && bytes[i] == sign;
      fits = fits && ((bytes[7] & 0x80) ? 0xFF : 0x00) == sign;
      if (!fits) {
        PickleRef big = make(Kind::Int);
        big->big_integer = true;
        return big;
      }
      length = 8;
    }
    std::uint64_t value = 0;
    for (std::uint64_t i = 0; i < length; ++i) value |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    if (length > 0 && length < 8 && (bytes[length - 1] & 0x80)) value |= ~std::uint64_t{0} << (8 * length);
    return make_int(static_cast<std::int64_t>(value));
  }

  /// The value of a hex digit, or -1. (Not std::stoi: it accepts signs and spaces, and throws
  /// std::invalid_argument, not clip::Error, on a non-digit.)
  static int hex_digit(char c) {
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
  }

  /// Protocol 0 string literal 'abc' or "abc" with Python escapes; the common ones are decoded.
  std::string unquote(const std::string& line) {
    if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') || line.back() != line.front())
      fail("malformed STRING literal");
    std::string out;
    for (std::size_t i = 1; i + 1 < line.size(); ++i) {
      char c = line[i];
      if (c == '\\' && i + 2 < line.size()) {
        const char next = line[++i];
        switch (next) {
          case 'n': c = '\n'; break;
          case 't': c = '\t'; break;
          case 'r': c = '\r'; break;
          case '\\': c = '\\'; break;
          case '\'': c = '\''; break;
          case '"': c = '"'; break;
          case 'x': {  // exactly two hex digits, as Python requires ("invalid \\x escape")
            const int high = i + 3 < line.size() ? hex_digit(line[i + 1]) : -1;
            const int low = high >= 0 ? hex_digit(line[i + 2]) : -1;
            if (low < 0) fail("malformed \\x escape");
            c = static_cast<char>(high * 16 + low);
            i += 2;
            break;
          }
          default: out.push_back('\\'); c = next;
        }
      }
      out.push_back(c);
    }
    return out;
  }

  static void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) out.push_back(static_cast<char>(code));
    else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  void memo_put(std::uint64_t index) {
    if (stack_.empty()) fail("PUT on an empty stack");
    if (memo_.size() >= limits_.max_memo && !memo_.count(index))
      fail("more than " + std::to_string(limits_.max_memo) + " memo entries");
    memo_[index] = stack_.back();
  }
  void memo_get(std::uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    push(found->second);
  }

  PickleRef global(std::string module, std::string name) {
    if (module.size() > 256 || name.size() > 256) fail("global name too long");
    return make_text(Kind::Global, module + "." + name);
  }

  static bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

  /// Is this global a TorchScript class (an object rebuilt from its state)?
  static bool is_torchscript_class(const std::string& name) { return starts_with(name, "__torch__."); }

  std::int64_t int_of(const PickleValue& value, const char* what) {
    if (value.is(Kind::Bool)) return value.boolean ? 1 : 0;
    if (!value.is(Kind::Int) || value.big_integer) fail(std::string(what) + " is not a (64-bit) int");
    return value.integer;
  }
  std::vector<std::int64_t> ints_of(const PickleValue& value, const char* what) {
    if (!value.is(Kind::Tuple) && !value.is(Kind::List)) fail(std::string(what) + " is not a tuple of ints");
    std::vector<std::int64_t> result;
    for (const PickleRef& item : value.items) result.push_back(int_of(*item, what));
    return result;
  }

  /// REDUCE: calls an allow-listed global on its argument tuple, as data.
  PickleRef reduce(const PickleValue& callable, const PickleRef& args_ref) {
    const PickleValue& args = *args_ref;
    if (!callable.is(Kind::Global)) fail("REDUCE on a " + std::string(pickle_kind_name(callable.kind)) + ", not a global");
    if (!args.is(Kind::Tuple)) fail("REDUCE arguments are not a tuple");
    const std::string& name = callable.text;
    const auto& a = args.items;
    if (name == "collections.OrderedDict") {
      if (!a.empty()) fail("OrderedDict with arguments is not supported");
      return make(Kind::Dict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4) fail(name + " needs (storage, offset, size, stride, ...)");
      if (!a[0]->is(Kind::Storage)) fail(name + ": first argument is a " + pickle_kind_name(a[0]->kind) + ", not a storage");
      PickleRef value = make(Kind::Tensor);
      value->tensor = std::make_unique<PickleTensor>();
      value->tensor->storage = a[0];
      value->tensor->offset = int_of(*a[1], "tensor storage offset");
      value->tensor->shape = ints_of(*a[2], "tensor size");
      value->tensor->stride = ints_of(*a[3], "tensor stride");
      if (value->tensor->shape.size() != value->tensor->stride.size())
        fail(name + ": size has " + std::to_string(value->tensor->shape.size()) + " dimensions, stride " +
             std::to_string(value->tensor->stride.size()));
      if (value->tensor->shape.size() > 16) fail(name + ": more than 16 dimensions");
      return value;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || !a[0]->is(Kind::Tensor)) fail(name + ": first argument is not a tensor");
      return a[0];
    }
    if (name == "torch.Size") {
      if (a.size() != 1 || !a[0]->is(Kind::Tuple)) fail("torch.Size needs one tuple");
      return a[0];
    }
    if (name == "torch.jit._pickle.build_intlist" || name == "torch.jit._pickle.build_doublelist" ||
        name == "torch.jit._pickle.build_boollist" || name == "torch.jit._pickle.build_tensorlist" ||
        name == "torch.jit._pickle.build_strlist" || name == "torch.jit._pickle.restore_type_tag") {
      if (a.empty()) fail(name + " without arguments");
      return a[0];
    }
    if (name == "_codecs.encode") {
      if (a.empty() || !a[0]->is(Kind::String)) fail("_codecs.encode of a non-string");
      // Protocol 2 writes bytes as _codecs.encode(text, "latin1"): code points back to bytes.
      PickleRef bytes = make(Kind::Bytes);
      const std::string& text = a[0]->text;
      for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) bytes->text.push_back(static_cast<char>(c));
        else if ((c & 0xE0) == 0xC0 && i + 1 < text.size())
          bytes->text.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(text[++i]) & 0x3F)));
        else fail("_codecs.encode: text is not latin-1");
      }
      return bytes;
    }
    if (is_torchscript_class(name)) return new_object(callable, args_ref);
    fail("global '" + name + "' is not allowed (clip reads checkpoint data only; it never runs code from a file)");
  }

  PickleRef new_object(const PickleValue& cls, const PickleRef& args) {
    if (!cls.is(Kind::Global)) fail("NEWOBJ of a " + std::string(pickle_kind_name(cls.kind)) + ", not a class");
    if (!is_torchscript_class(cls.text))
      fail("global '" + cls.text + "' is not allowed (clip reads checkpoint data only; it never runs code from a file)");
    PickleRef object = make(Kind::Object);
    object->text = cls.text;
    place(*object, args);
    object->items.push_back(args);
    return object;
  }

  void build(PickleValue& target, const PickleRef& state) {
    if (target.is(Kind::Object)) {
      if (target.state || !target.entries.empty()) fail("BUILD on an object twice");
      place(target, state);
      if (state->is(Kind::Dict)) target.entries = state->entries;
      else target.state = state;
      return;
    }
    if (target.is(Kind::Dict) || target.is(Kind::Tensor)) {
      // An OrderedDict's attributes (a state dict's _metadata) or a tensor's python state:
      // not needed, kept out of the tree.
      place(target, state);
      return;
    }
    fail("BUILD on a " + std::string(pickle_kind_name(target.kind)));
  }

  void step(std::uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const std::uint8_t protocol = in_.u8("protocol");
        if (protocol > 5) fail("pickle protocol " + std::to_string(protocol) + " is newer than 5");
        return;
      }
      case 0x95: in_.u64("frame length"); return;  // FRAME: a hint only
      case '(': marks_.push_back(stack_.size()); return;
      case '0': pop(); return;
      case '1': pop_mark(); return;
      case '2': push(top()); return;
      case 'N': push(make(Kind::None)); return;
      case 0x88: push(make_bool(true)); return;
      case 0x89: push(make_bool(false)); return;
      case 'I': push(decimal_int(read_line("INT"))); return;
      case 'L': push(decimal_int(read_line("LONG"))); return;
      case 'J': push(make_int(static_cast<std::int32_t>(in_.u32("BININT")))); return;
      case 'K': push(make_int(in_.u8("BININT1"))); return;
      case 'M': push(make_int(in_.u16("BININT2"))); return;
      case 0x8a: push(binary_long(in_.u8("LONG1 length"))); return;
      case 0x8b: {
        const std::int32_t length = static_cast<std::int32_t>(in_.u32("LONG4 length"));
        if (length < 0) fail("negative LONG4 length");
        push(binary_long(static_cast<std::uint64_t>(length)));
        return;
      }
      case 'F': {
        const std::string line = read_line("FLOAT");
        PickleRef value = make(Kind::Float);
        char* end = nullptr;
        value->floating = std::strtod(line.c_str(), &end);
        if (line.empty() || end != line.c_str() + line.size()) fail("malformed FLOAT");
        push(value);
        return;
      }
      case 'G': {
        const std::uint64_t bits = in_.u64("BINFLOAT") ;
        // BINFLOAT is big-endian.
        std::uint64_t swapped = 0;
        for (int i = 0; i < 8; ++i) swapped |= ((bits >> (8 * i)) & 0xFF) << (8 * (7 - i));
        PickleRef value = make(Kind::Float);
        std::memcpy(&value->floating, &swapped, 8);
        push(value);
        return;
      }
      case 'S': push(make_text(Kind::String, unquote(read_line("STRING")))); return;
      case 'T': {
        const std::int32_t length = static_cast<std::int32_t>(in_.u32("BINSTRING length"));
        if (length < 0) fail("negative BINSTRING length");
        push(make_text(Kind::String, in_.string(static_cast<std::uint64_t>(length), "BINSTRING")));
        return;
      }
      case 'U': push(make_text(Kind::String, in_.string(in_.u8("SHORT_BINSTRING length"), "SHORT_BINSTRING"))); return;
      case 'V': {  // UNICODE: raw-unicode-escape, \uXXXX and \UXXXXXXXX
        const std::string line = read_line("UNICODE");
        std::string out;
        for (std::size_t i = 0; i < line.size(); ++i) {
          if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == 'u' || line[i + 1] == 'U')) {
            const std::size_t digits = line[i + 1] == 'u' ? 4 : 8;
            if (i + 2 + digits > line.size()) fail("malformed UNICODE escape");
            std::uint32_t code = 0;
            for (std::size_t d = 0; d < digits; ++d) {
              const char c = line[i + 2 + d];
              const int v = hex_digit(c);
              if (v < 0) fail("malformed UNICODE escape");
              code = code * 16 + static_cast<std::uint32_t>(v);
            }
            if (code > 0x10FFFF) fail("UNICODE escape beyond U+10FFFF");
            append_utf8(out, code);
            i += 1 + digits;
          } else {
            append_utf8(out, static_cast<unsigned char>(line[i]));  // latin-1 bytes
          }
        }
        push(make_text(Kind::String, std::move(out)));
        return;
      }
      case 'X': push(make_text(Kind::String, in_.string(in_.u32("BINUNICODE length"), "BINUNICODE"))); return;
      case 0x8c: push(make_text(Kind::String, in_.string(in_.u8("SHORT_BINUNICODE length"), "SHORT_BINUNICODE"))); return;
      case 0x8d: push(make_text(Kind::String, in_.string(in_.u64("BINUNICODE8 length"), "BINUNICODE8"))); return;
      case 'B': push(make_text(Kind::Bytes, in_.string(in_.u32("BINBYTES length"), "BINBYTES"))); return;
      case 'C': push(make_text(Kind::Bytes, in_.string(in_.u8("SHORT_BINBYTES length"), "SHORT_BINBYTES"))); return;
      case 0x8e: push(make_text(Kind::Bytes, in_.string(in_.u64("BINBYTES8 length"), "BINBYTES8"))); return;
      case 0x96: push(make_text(Kind::Bytes, in_.string(in_.u64("BYTEARRAY8 length"), "BYTEARRAY8"))); return;
      case ')': push(make(Kind::Tuple)); return;
      case 't': push(make_sequence(Kind::Tuple, pop_mark())); return;
      case 0x85: {
        PickleRef a = pop();
        push(make_sequence(Kind::Tuple, {std::move(a)}));
        return;
      }
      case 0x86: {
        PickleRef b = pop(), a = pop();
        push(make_sequence(Kind::Tuple, {std::move(a), std::move(b)}));
        return;
      }
      case 0x87: {
        PickleRef c = pop(), b = pop(), a = pop();
        push(make_sequence(Kind::Tuple, {std::move(a), std::move(b), std::move(c)}));
        return;
      }
      case ']': push(make(Kind::List)); return;
      case 'l': push(make_sequence(Kind::List, pop_mark())); return;
      case 0x8f: push(make(Kind::Set)); return;
      case 0x91: push(make_sequence(Kind::Set, pop_mark())); return;
      case '}': push(make(Kind::Dict)); return;
      case 'd': {
        std::vector<PickleRef> items = pop_mark();
        PickleRef dict = make(Kind::Dict);
        set_items(*dict, items);
        push(dict);
        return;
      }
      case 'a': {
        std::vector<PickleRef> item{pop()};
        append_items(*top(), item);
        return;
      }
      case 'e':
      case 0x90: {
        std::vector<PickleRef> items = pop_mark();
        append_items(*top(), items);
        return;
      }
      case 's': {
        PickleRef value = pop(), key = pop();
        std::vector<PickleRef> items{std::move(key), std::move(value)};
        set_items(*top(), items);
        return;
      }
      case 'u': {
        std::vector<PickleRef> items = pop_mark();
        set_items(*top(), items);
        return;
      }
      case 'p': {
        std::int64_t index = 0;
        if (!parse_decimal(read_line("PUT"), index) || index < 0) fail("malformed PUT");
        memo_put(static_cast<std::uint64_t>(index));
        return;
      }
      case 'q': memo_put(in_.u8("BINPUT")); return;
      case 'r': memo_put(in_.u32("LONG_BINPUT")); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'g': {
        std::int64_t index = 0;
        if (!parse_decimal(read_line("GET"), index) || index < 0) fail("malformed GET");
        memo_get(static_cast<std::uint64_t>(index));
        return;
      }
      case 'h': memo_get(in_.u8("BINGET")); return;
      case 'j': memo_get(in_.u32("LONG_BINGET")); return;
      case 'c': {
        std::string module = read_line("GLOBAL module");
        std::string name = read_line("GLOBAL name");
        push(global(std::move(module), std::move(name)));
        return;
      }
      case 0x93: {
        PickleRef name = pop(), module = pop();
        if (!name->is(Kind::String) || !module->is(Kind::String)) fail("STACK_GLOBAL of non-strings");
        push(global(module->text, name->text));
        return;
      }
      case 'R': {
        PickleRef args = pop(), callable = pop();
        push(reduce(*callable, args));
        return;
      }
      case 0x81: {
        PickleRef args = pop(), cls = pop();
        push(new_object(*cls, args));
        return;
      }
      case 0x92: {
        PickleRef kwargs = pop(), args = pop(), cls = pop();
        push(new_object(*cls, args));
        return;
      }
      case 'b': {
        PickleRef state = pop();
        build(*top(), state);
        return;
      }
      case 'P':
      case 'Q': {
        PickleRef id = op == 'Q' ? pop() : make_text(Kind::String, read_line("PERSID"));
        if (!persistent_load_) fail("persistent id where none is expected");
        push(persistent_load_(*id));
        return;
      }
      case 'i': case 'o':
        fail("INST/OBJ opcodes (instantiating arbitrary classes) are not allowed");
      case 0x82: case 0x83: case 0x84:
        fail("EXT opcodes (the copyreg extension registry) are not supported");
      case 0x97: case 0x98:
        fail("out-of-band buffers (protocol 5) are not supported");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unknown opcode ") + hex);
      }
    }
  }

  detail::ByteReader in_;
  PersistentLoad persistent_load_;
  PickleLimits limits_;
  std::vector<PickleRef> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, PickleRef> memo_;
  std::size_t values_ = 0;
};

}  // namespace clip
