// The checkpoint readers on hand-built files: the pickle data reader (and the hostile pickles it
// must refuse without running anything), ZIP and ZIP64, torch.save's zip and legacy layouts,
// TorchScript module trees, GGUF with its quantized blocks, and every safetensors dtype.
// Eigen-free on purpose: these headers compile fast and are the ones the fuzz targets drive.

#include "formats/builders.hpp"
#include "test_support.hpp"

#include <clip/convert/checkpoint_tensors.hpp>
#include <clip/formats/gguf.hpp>
#include <clip/formats/pickle.hpp>
#include <clip/formats/tensor_file.hpp>
#include <clip/formats/tensor_writer.hpp>
#include <clip/formats/torch_checkpoint.hpp>
#include <clip/formats/zip.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace {

using clip::PickleValue;
using clip_test::Pickle;
using Kind = PickleValue::Kind;

/// A byte string literal with its embedded NULs.
#define BYTES(literal) std::string(literal, sizeof(literal) - 1)

const std::uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }

clip::PickleRef read_pickle(const std::string& bytes, clip::PickleReader::PersistentLoad load = {}) {
  clip::PickleReader reader(bytes_of(bytes), bytes.size(), "test.pkl", std::move(load));
  return reader.read();
}

/// The clip::Error message of `body`, or a test failure when it does not throw one.
template <typename Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const clip::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a clip::Error";
  return {};
}

#define EXPECT_ERROR_MENTIONS(body, text)                                          \
  do {                                                                             \
    const std::string message_ = error_of([&] { body; });                          \
    EXPECT_NE(message_.find(text), std::string::npos) << "message: " << message_; \
  } while (0)

TEST(Pickle, ReadsTheValuesOfEveryProtocol) {
  // Protocol 0 text opcodes, then binary ones, in one tuple.
  Pickle p;
  p.mark().raw("I42\n").raw("L-7L\n").raw("F2.5\n").raw("S'a\\nb'\n").raw("Vx\\u00e9\n").raw("I01\n").op('N');
  p.integer(300).integer(-5).integer(1ll << 40).op('\x88').op('\x89');
  p.raw(std::string("G\x40\x09\x21\xfb\x54\x44\x2d\x18", 9));  // BINFLOAT pi, big-endian
  p.raw(std::string("C\x03xyz", 5)).raw(std::string("\x8c\x02hi", 4));
  p.tuple().stop();
  const clip::PickleRef value = read_pickle(p.bytes);
  ASSERT_TRUE(value->is(Kind::Tuple));
  const auto& v = value->items;
  ASSERT_EQ(v.size(), 15u);
  EXPECT_EQ(v[0]->integer, 42);
  EXPECT_EQ(v[1]->integer, -7);
  EXPECT_EQ(v[2]->floating, 2.5);
  EXPECT_EQ(v[3]->text, "a\nb");
  EXPECT_EQ(v[4]->text, "x\xc3\xa9");
  EXPECT_TRUE(v[5]->is(Kind::Bool) && v[5]->boolean);
  EXPECT_TRUE(v[6]->is(Kind::None));
  EXPECT_EQ(v[7]->integer, 300);
  EXPECT_EQ(v[8]->integer, -5);
  EXPECT_EQ(v[9]->integer, 1ll << 40);
  EXPECT_TRUE(v[10]->boolean);
  EXPECT_FALSE(v[11]->boolean);
  EXPECT_DOUBLE_EQ(v[12]->floating, 3.141592653589793);
  EXPECT_TRUE(v[13]->is(Kind::Bytes) && v[13]->text == "xyz");
  EXPECT_EQ(v[14]->text, "hi");
}

TEST(Pickle, DecodesStringEscapesAndRefusesBadHexOnes) {
  // Protocol 0 STRING: \xHH takes exactly two hex digits (Python: "invalid \x escape").
  EXPECT_EQ(read_pickle("S'\\x41\\x7e\\xFFz'\n.")->text, "A~\xffz");
  EXPECT_ERROR_MENTIONS(read_pickle("S'\\xzz'\n."), "\\x escape");  // found by fuzz_pickle: was std::invalid_argument
  EXPECT_ERROR_MENTIONS(read_pickle("S'\\x-1'\n."), "\\x escape");  // std::stoi took the sign
  EXPECT_ERROR_MENTIONS(read_pickle("S'\\x 1'\n."), "\\x escape");  // and leading space
  EXPECT_ERROR_MENTIONS(read_pickle("S'\\x4g'\n."), "\\x escape");  // and stopped at the 'g'
  EXPECT_ERROR_MENTIONS(read_pickle("S'\\x4'\n."), "\\x escape");   // one digit, then the quote
}

TEST(Pickle, BuildsContainersMemoAndTensorRecords) {
  Pickle p;
  p.proto(4).op('}').op('\x94').mark().str("list").op(']').op('\x94').mark().integer(1).integer(2).op('e');
  p.str("again").raw("h\x01").str("size").global("torch", "Size").integer(3).integer(4).op('\x86').op('\x85').reduce();
  p.str("t").tensor("HalfStorage", "7", 12, 0, {3, 4}, {4, 1});
  p.op('u').stop();
  const clip::PickleRef root = read_pickle(p.bytes, [](const PickleValue& id) {
    auto storage = std::make_shared<PickleValue>();
    storage->kind = Kind::Storage;
    storage->storage = std::make_unique<clip::PickleStorage>();
    EXPECT_EQ(id.items.at(2)->text, "7");
    EXPECT_TRUE(clip::torch_storage_dtype(id.items.at(1)->text, storage->storage->dtype));
    return storage;
  });
  ASSERT_TRUE(root->is(Kind::Dict));
  EXPECT_EQ(root->get("list")->items.size(), 2u);
  EXPECT_EQ(root->get("again"), root->get("list"));  // the memo shares, it does not copy
  EXPECT_EQ(root->get("size")->items.size(), 2u);
  const PickleValue* tensor = root->get("t");
  ASSERT_TRUE(tensor && tensor->is(Kind::Tensor));
  EXPECT_EQ(tensor->tensor->shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(tensor->tensor->storage->storage->dtype, clip::DType::F16);
}

TEST(Pickle, RefusesToRunCodeAndNamesTheGlobal) {
  const auto dir = clip_test::scratch_dir("pickle-hostile");
  const auto marker = dir / "ran";
  // The classic: os.system("touch <marker>") through REDUCE, in protocol 0 and 2 spellings.
  const std::string protocol0 = "cos\nsystem\n(S'touch " + marker.string() + "'\ntR.";
  EXPECT_ERROR_MENTIONS(read_pickle(protocol0), "'os.system' is not allowed");
  Pickle stack_global;
  stack_global.proto(4).raw(BYTES("\x8c\x02os\x8c\x06system\x93")).str("touch " + marker.string()).op('\x85').reduce().stop();
  EXPECT_ERROR_MENTIONS(read_pickle(stack_global.bytes), "'os.system' is not allowed");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a pickle ran a command";

  Pickle eval;
  eval.proto(2).global("builtins", "eval").str("1+1").op('\x85').reduce().stop();
  EXPECT_ERROR_MENTIONS(read_pickle(eval.bytes), "'builtins.eval'");
  Pickle newobj;
  newobj.proto(2).global("subprocess", "Popen").empty_tuple().op('\x81').stop();
  EXPECT_ERROR_MENTIONS(read_pickle(newobj.bytes), "'subprocess.Popen'");
  EXPECT_ERROR_MENTIONS(read_pickle("(cos\nsystem\nS'true'\ni."), "INST/OBJ");
  EXPECT_ERROR_MENTIONS(read_pickle(std::string("\x80\x02\x82\x01.", 5)), "EXT");
  // A tensor rebuilt from something that is not a storage.
  Pickle fake;
  fake.proto(2).global("torch._utils", "_rebuild_tensor_v2").mark().str("x").integer(0).ints({1}).ints({1}).tuple().reduce().stop();
  EXPECT_ERROR_MENTIONS(read_pickle(fake.bytes), "not a storage");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(Pickle, BoundsNestingCyclesMemoAndTruncation) {
  // 100 000 nested tuples: refused at the depth limit, not by a stack overflow.
  std::string deep = "\x80\x02)";
  for (int i = 0; i < 100000; ++i) deep += '\x85';
  deep += '.';
  EXPECT_ERROR_MENTIONS(read_pickle(deep), "nesting deeper than");
  // Lists appended into one another 10 000 deep.
  std::string lists = "\x80\x02";
  for (int i = 0; i < 10000; ++i) lists += ']';
  for (int i = 0; i < 9999; ++i) lists += 'a';
  lists += '.';
  EXPECT_ERROR_MENTIONS(read_pickle(lists), "nesting deeper than");
  // A list that holds itself, and a list changed after being placed in another.
  EXPECT_ERROR_MENTIONS(read_pickle(BYTES("\x80\x02]q\x00h\x00" "a.")), "holds itself");
  EXPECT_ERROR_MENTIONS(read_pickle(BYTES("\x80\x02]q\x00]h\x00" "ah\x00K\x01" "a0.")), "changed after being used");
  // Memo: a GET of what was never PUT; a huge index is a map key, not an array size.
  EXPECT_ERROR_MENTIONS(read_pickle(std::string("\x80\x02h\x05.", 5)), "never stored");
  EXPECT_NO_THROW(read_pickle(std::string("\x80\x02Nr\xff\xff\xff\xffj\xff\xff\xff\xff" "0.", 15)));
  // Memory is bounded by counts, not by what the file claims: 3 million DUPs of one None, and
  // 3 million fresh values, both refused (each would otherwise cost memory per opcode byte).
  EXPECT_ERROR_MENTIONS(read_pickle("N" + std::string(3u << 20, '2') + "."), "on the stack");
  EXPECT_ERROR_MENTIONS(read_pickle("]" + std::string(3u << 20, 'N') + "."), "values");
  // Stack misuse and unknown opcodes.
  EXPECT_ERROR_MENTIONS(read_pickle("0."), "stack underflow");
  EXPECT_ERROR_MENTIONS(read_pickle("NN."), "2 values");
  EXPECT_ERROR_MENTIONS(read_pickle("\xff."), "unknown opcode 0xff");
  EXPECT_ERROR_MENTIONS(read_pickle(std::string("\x80\x06N.", 4)), "protocol 6");
  // A string claiming 4 GB in a tiny file.
  EXPECT_ERROR_MENTIONS(read_pickle(std::string("X\xff\xff\xff\xff", 5)), "truncated");
  // Every prefix of a real state dict pickle fails cleanly.
  const std::string full = clip_test::state_dict_pickle({{"a", "0", {2, 3}, {}, 6}, {"b", "1", {3}, {}, 3}});
  auto load = [](const PickleValue&) {
    auto s = std::make_shared<PickleValue>();
    s->kind = Kind::Storage;
    s->storage = std::make_unique<clip::PickleStorage>();
    return s;
  };
  EXPECT_NO_THROW(read_pickle(full, load));
  for (std::size_t cut = 0; cut < full.size(); ++cut) EXPECT_THROW(read_pickle(full.substr(0, cut), load), clip::Error) << cut;
}

TEST(Zip, ReadsStoredEntriesAndZip64Records) {
  const std::vector<clip_test::ZipFileEntry> entries{{"a/one", "hello"}, {"a/two", std::string(1000, 'x')}, {"a/empty", ""}};
  for (bool zip64 : {false, true}) {
    const std::string bytes = clip_test::make_zip(entries, zip64);
    const clip::ZipArchive zip(bytes_of(bytes), bytes.size(), "test.zip");
    ASSERT_EQ(zip.entries().size(), 3u) << zip64;
    EXPECT_EQ(zip.text(*zip.find("a/one")), "hello");
    EXPECT_EQ(zip.text(*zip.find("a/two")), std::string(1000, 'x'));
    EXPECT_EQ(zip.find("a/empty")->size, 0u);
    EXPECT_EQ(zip.find("a/two")->data_offset % 64, 0u) << "torch aligns entry data to 64 bytes";
    EXPECT_EQ(zip.find("missing"), nullptr);
  }
}

TEST(Zip, RefusesCompressedEncryptedAndTruncatedArchives) {
  std::vector<clip_test::ZipFileEntry> entries{{"a/data.pkl", "x"}};
  entries[0].method = 8;
  std::string bytes = clip_test::make_zip(entries);
  const clip::ZipArchive deflated(bytes_of(bytes), bytes.size(), "deflated.zip");
  EXPECT_ERROR_MENTIONS(deflated.data(deflated.entries()[0]), "compressed (method 8)");
  entries[0].method = 0;
  entries[0].flags = 1;
  bytes = clip_test::make_zip(entries);
  const clip::ZipArchive encrypted(bytes_of(bytes), bytes.size(), "encrypted.zip");
  EXPECT_ERROR_MENTIONS(encrypted.data(encrypted.entries()[0]), "encrypted");

  const std::string torch = clip_test::make_torch_zip(clip_test::state_dict_pickle({{"w", "0", {4}, {}, 4}}),
                                                      {{"0", clip_test::float_bytes({1, 2, 3, 4})}});
  for (bool zip64 : {false, true}) {
    const std::string archive = zip64 ? clip_test::make_torch_zip(clip_test::state_dict_pickle({{"w", "0", {4}, {}, 4}}),
                                                                  {{"0", clip_test::float_bytes({1, 2, 3, 4})}}, true)
                                      : torch;
    // Every truncation and a few corruptions: clip::Error, never a crash or a wild read.
    for (std::size_t cut = 0; cut < archive.size(); ++cut)
      EXPECT_THROW(clip::TorchCheckpoint(bytes_of(archive), cut, "cut.pt"), clip::Error) << cut;
  }
  std::string lying = torch;
  lying[lying.size() - 7] = '\x7f';  // end record: central directory size far past the file
  EXPECT_ERROR_MENTIONS(clip::ZipArchive(bytes_of(lying), lying.size(), "lying.zip"), "runs past the end");
  std::string many = torch;
  many[many.size() - 12] = '\xff';  // end record: 32767 entries in a small directory
  many[many.size() - 11] = '\x7f';
  EXPECT_ERROR_MENTIONS(clip::ZipArchive(bytes_of(many), many.size(), "many.zip"), "claims");
}

TEST(TorchCheckpoint, ReadsZipStateDictsWithStridesAndStorageTypes) {
  // A 2x3 matrix stored transposed (stride 1, 2): a view as torch.save keeps it.
  const std::vector<float> storage{0, 3, 1, 4, 2, 5};
  const std::string pkl = clip_test::state_dict_pickle({{"m", "0", {2, 3}, {1, 2}, 6}, {"v", "0", {2}, {}, 6}});
  const std::string bytes = clip_test::make_torch_zip(pkl, {{"0", clip_test::float_bytes(storage)}});
  const clip::TorchCheckpoint checkpoint(bytes_of(bytes), bytes.size(), "strided.pt");
  EXPECT_EQ(checkpoint.kind(), clip::TorchCheckpoint::Kind::Zip);
  EXPECT_EQ(checkpoint.version(), 3);
  const PickleValue& root = checkpoint.root();
  const clip::StoredTensor m = checkpoint.view(*root.get("m")->tensor, "m");
  EXPECT_FALSE(m.contiguous());
  std::vector<float> values(6);
  clip::read_stored_tensor(m, values.data(), "m");
  EXPECT_EQ(values, (std::vector<float>{0, 1, 2, 3, 4, 5}));

  // F16 and BF16 storages widen exactly.
  for (const char* type : {"HalfStorage", "BFloat16Storage"}) {
    const bool half = std::string(type) == "HalfStorage";
    const std::string raw = half ? std::string("\x00\x3c\x00\xc0", 4) : std::string("\x80\x3f\x00\xc0", 4);  // 1, -2
    const std::string file = clip_test::make_torch_zip(clip_test::state_dict_pickle({{"h", "0", {2}, {}, 2}}, type), {{"0", raw}});
    const clip::TorchCheckpoint typed(bytes_of(file), file.size(), type);
    std::vector<float> out(2);
    clip::read_stored_tensor(typed.view(*typed.root().get("h")->tensor, "h"), out.data(), "h");
    EXPECT_EQ(out, (std::vector<float>{1, -2})) << type;
  }
}

TEST(TorchCheckpoint, RefusesStoragesAndViewsThatLie) {
  auto open = [](const std::vector<clip_test::NamedTensor>& tensors, const std::string& data) {
    const std::string bytes = clip_test::make_torch_zip(clip_test::state_dict_pickle(tensors), {{"0", data}});
    const clip::TorchCheckpoint checkpoint(bytes_of(bytes), bytes.size(), "lying.pt");
    for (const auto& [key, value] : checkpoint.root().entries) checkpoint.view(*value->tensor, key->text);
  };
  const std::string four = clip_test::float_bytes({1, 2, 3, 4});
  EXPECT_NO_THROW(open({{"w", "0", {4}, {}, 4}}, four));
  // A storage past its entry, and one claiming 2^62 elements: errors before any allocation.
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {4}, {}, 100}}, four), "its entry has 16 bytes");
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {4}, {}, std::int64_t{1} << 62}}, four), "claims 4611686018427387904");
  // Shapes and strides beyond the storage or beyond arithmetic.
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {5}, {}, 4}}, four), "has 5 elements but its storage only 4");
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {2}, {4}, 4}}, four), "reaches element 4");
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {1 << 30, 1 << 30, 1 << 30}, {}, 4}}, four), "absurd shape");
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {3, 3}, {INT64_MAX, INT64_MAX}, 4}}, four), "absurd stride");
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {2}, {-1}, 4}}, four), "negative");
  // Zero strides would let 2^40 elements come out of 4: refused before anything is allocated.
  EXPECT_ERROR_MENTIONS(open({{"w", "0", {1 << 20, 1 << 20}, {0, 0}, 4}}, four), "broadcast views are not supported");
  EXPECT_ERROR_MENTIONS(open({{"w", "9", {1}, {}, 1}}, four), "no entry");
  // Not a checkpoint at all, a tar, and a pickle without the legacy magic.
  const std::string junk = "hello world";
  EXPECT_ERROR_MENTIONS(clip::TorchCheckpoint(bytes_of(junk), junk.size(), "junk"), "not a PyTorch checkpoint");
  const std::string plain = "\x80\x02N.";
  EXPECT_ERROR_MENTIONS(clip::TorchCheckpoint(bytes_of(plain), plain.size(), "plain"), "no legacy magic");
  const std::string no_pkl = clip_test::make_zip({{"x/other", "1"}});
  EXPECT_ERROR_MENTIONS(clip::TorchCheckpoint(bytes_of(no_pkl), no_pkl.size(), "nopkl"), "without <name>/data.pkl");
  const std::string big_endian = clip_test::make_zip({{"x/data.pkl", "N."}, {"x/byteorder", "big"}});
  EXPECT_ERROR_MENTIONS(clip::TorchCheckpoint(bytes_of(big_endian), big_endian.size(), "big"), "little-endian");
}

TEST(TorchCheckpoint, ReadsTheLegacyFormat) {
  const std::string pkl = clip_test::state_dict_pickle({{"a", "10", {2, 2}, {}, 4}, {"b", "11", {3}, {}, 3}});
  const std::string bytes = clip_test::make_legacy(pkl, {{"10", clip_test::float_bytes({1, 2, 3, 4})}, {"11", clip_test::float_bytes({5, 6, 7})}});
  const clip::TorchCheckpoint checkpoint(bytes_of(bytes), bytes.size(), "legacy.pt");
  EXPECT_EQ(checkpoint.kind(), clip::TorchCheckpoint::Kind::Legacy);
  std::vector<float> b(3);
  clip::read_stored_tensor(checkpoint.view(*checkpoint.root().get("b")->tensor, "b"), b.data(), "b");
  EXPECT_EQ(b, (std::vector<float>{5, 6, 7}));
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    try {
      const clip::TorchCheckpoint partial(bytes_of(bytes), cut, "cut-legacy.pt");
      for (const auto& [key, value] : partial.root().entries) partial.view(*value->tensor, key->text);
      ADD_FAILURE() << "truncated at " << cut << " of " << bytes.size() << " but read";
    } catch (const clip::Error&) {
    }
  }
  // A storage whose size field claims more than the file holds.
  std::string lying = bytes;
  lying[lying.size() - 12 - 1] = '\x7f';  // high byte of the last storage's element count
  EXPECT_THROW(clip::TorchCheckpoint(bytes_of(lying), lying.size(), "lying-legacy.pt"), clip::Error);
}

TEST(CheckpointTensors, WalksModuleTreesAndUnwrapsTrainingCheckpoints) {
  const auto dir = clip_test::scratch_dir("checkpoint-tensors");
  // A TorchScript-shaped tree: objects of __torch__ classes (names arbitrary) holding tensors
  // and submodules in their BUILD state.
  Pickle p;
  p.proto(2).global("__torch__.whatever", "Top").empty_tuple().op('\x81').op('}').mark();
  p.str("scale").tensor("FloatStorage", "0", 4, 0, {}, {});
  p.str("training").op('\x89');
  p.str("visual").global("__torch__.x.___torch_mangle_3", "Inner").empty_tuple().op('\x81').op('}').mark();
  p.str("proj").tensor("FloatStorage", "0", 4, 1, {3}, {1});
  p.op('u').op('b');
  p.op('u').op('b').stop();
  clip_test::write_bytes(dir / "jit.pt", clip_test::make_torch_zip(p.bytes, {{"0", clip_test::float_bytes({1, 2, 3, 4})}}));
  clip::detail::CheckpointTensors jit;
  jit.add_torch((dir / "jit.pt").string());
  EXPECT_EQ(jit.kinds(), "TorchScript archive");
  ASSERT_TRUE(jit.contains("visual.proj"));
  EXPECT_EQ(jit.read("visual.proj"), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(jit.read("scale"), (std::vector<float>{1}));

  // {"epoch": 3, "state_dict": {"module.w": ...}}: unwrapped, prefix stripped.
  Pickle wrapped;
  wrapped.proto(2).op('}').mark().str("epoch").integer(3).str("state_dict").op('}').mark();
  wrapped.str("module.w").tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1});
  wrapped.op('u').op('u').stop();
  clip_test::write_bytes(dir / "train.pt", clip_test::make_torch_zip(wrapped.bytes, {{"0", clip_test::float_bytes({1, 2, 3, 4})}}));
  clip::detail::CheckpointTensors training;
  training.add_torch((dir / "train.pt").string());
  EXPECT_TRUE(training.contains("w"));
  EXPECT_EQ(training.read("w"), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Safetensors, AcceptsEveryDtypeOfTheSpecification) {
  const auto dir = clip_test::scratch_dir("safetensors-dtypes");
  clip::TensorWriter writer;
  const char* names[] = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"};
  for (const char* name : names) {
    clip::DType dtype;
    ASSERT_TRUE(clip::parse_dtype_name(name, dtype)) << name;
    writer.add_raw(std::string("t.") + name, dtype, {3}, std::vector<std::uint8_t>(3 * clip::dtype_size(dtype), 0));
  }
  writer.write((dir / "all.safetensors").string());
  const clip::TensorFile file((dir / "all.safetensors").string());
  EXPECT_EQ(file.tensors().size(), std::size(names));
  EXPECT_EQ(file.info("t.I64").dtype, clip::DType::I64);
  EXPECT_EQ(file.info("t.I64").nbytes, 24u);
  EXPECT_EQ(file.read<float>("t.F64"), (std::vector<float>{0, 0, 0}));
  EXPECT_ERROR_MENTIONS(file.read<float>("t.I64"), "is I64, expected a floating-point tensor");

  // A dtype outside the specification is still an error.
  const std::string header = R"({"x":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})";
  std::string bad;
  clip_test::put_le(bad, header.size(), 8);
  clip_test::write_bytes(dir / "bad.safetensors", bad + header + "x");
  EXPECT_ERROR_MENTIONS(clip::TensorFile((dir / "bad.safetensors").string()), "F7");
}

std::string u32_value(std::uint32_t v) {
  std::string s;
  clip_test::put_le(s, v, 4);
  return s;
}

TEST(Gguf, DequantizesEachBlockType) {
  // One block of 32 values per type, with scales chosen so every result is exact in float.
  // Expected values follow the block layouts of ggml's docs, written out element by element.
  std::string q8(2, '\0');
  q8[0] = 0x00, q8[1] = 0x38;  // d = 0.5
  for (int j = 0; j < 32; ++j) q8.push_back(static_cast<char>(j - 16));
  std::string nibbles;
  for (int j = 0; j < 16; ++j) nibbles.push_back(static_cast<char>((j & 0xF) | ((15 - j) << 4)));
  const std::string d2("\x00\x40", 2), one("\x00\x3c", 2), half_value("\x00\x38", 2);  // 2, 1, 0.5
  const std::uint32_t qh = 0xA5A5F00Fu;
  const std::string q4_0 = d2 + nibbles, q4_1 = one + half_value + nibbles;
  const std::string q5_0 = one + u32_value(qh) + nibbles, q5_1 = one + half_value + u32_value(qh) + nibbles;
  const std::string file = clip_test::make_gguf({}, {{"q8", {32}, 8, q8}, {"q4_0", {32}, 2, q4_0}, {"q4_1", {32}, 3, q4_1},
                                                    {"q5_0", {32}, 6, q5_0}, {"q5_1", {32}, 7, q5_1}});
  const clip::GgufFile gguf(bytes_of(file), file.size(), "quantized.gguf");
  auto values = [&](std::size_t i) {
    std::vector<float> out(32);
    clip::read_stored_tensor(gguf.view(gguf.tensors()[i]), out.data(), "t");
    return out;
  };
  const auto v8 = values(0), v40 = values(1), v41 = values(2), v50 = values(3), v51 = values(4);
  for (int j = 0; j < 32; ++j) {
    const int low = j < 16 ? j : 15 - (j - 16);  // element j's 4-bit code
    const int high_bit = static_cast<int>((qh >> j) & 1u);
    EXPECT_EQ(v8[j], 0.5f * (j - 16)) << j;
    EXPECT_EQ(v40[j], 2.0f * (low - 8)) << j;
    EXPECT_EQ(v41[j], 1.0f * low + 0.5f) << j;
    EXPECT_EQ(v50[j], 1.0f * ((low | (high_bit << 4)) - 16)) << j;
    EXPECT_EQ(v51[j], 1.0f * (low | (high_bit << 4)) + 0.5f) << j;
  }
}

TEST(Gguf, ReadsMetadataAndRefusesLies) {
  std::string tokens = u32_value(8);  // array of strings
  clip_test::put_le(tokens, 2, 8);
  tokens += clip_test::gguf_string("a") + clip_test::gguf_string("b</w>");
  const std::string file = clip_test::make_gguf({{"clip.vision.block_count", {4, u32_value(12)}}, {"tokenizer.ggml.tokens", {9, tokens}}},
                                                {{"w", {2, 3}, 0, clip_test::float_bytes({1, 2, 3, 4, 5, 6})}});
  const clip::GgufFile gguf(bytes_of(file), file.size(), "ok.gguf");
  EXPECT_EQ(gguf.find("clip.vision.block_count")->unsigned_value, 12u);
  EXPECT_EQ(gguf.find("tokenizer.ggml.tokens")->items.at(1).text, "b</w>");
  const clip::StoredTensor w = gguf.view(gguf.tensors()[0]);
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{3, 2}));  // ne reversed into torch's order

  for (std::size_t cut = 0; cut < file.size() - 8; ++cut) {  // the last 8 bytes are padding
    try {
      const clip::GgufFile partial(bytes_of(file), cut, "cut.gguf");
      for (const clip::GgufTensor& tensor : partial.tensors()) partial.view(tensor);
      ADD_FAILURE() << "truncated at " << cut << " but read";
    } catch (const clip::Error&) {
    }
  }
  std::string huge_array = u32_value(0);
  clip_test::put_le(huge_array, std::uint64_t{1} << 60, 8);
  const std::string huge = clip_test::make_gguf({{"k", {9, huge_array}}}, {});
  EXPECT_ERROR_MENTIONS(clip::GgufFile(bytes_of(huge), huge.size(), "huge.gguf"), "claims 1152921504606846976 elements");
  const std::string absurd = clip_test::make_gguf({}, {{"w", {1u << 31, 1u << 31, 1u << 31}, 0, ""}});
  EXPECT_ERROR_MENTIONS(clip::GgufFile(bytes_of(absurd), absurd.size(), "absurd.gguf"), "absurd shape");
  const std::string q2k = clip_test::make_gguf({}, {{"w", {256}, 10, std::string(84, '\0')}});
  EXPECT_ERROR_MENTIONS(clip::GgufFile(bytes_of(q2k), q2k.size(), "q2k.gguf"), "ggml type 10");
  const std::string v1 = clip_test::make_gguf({}, {}, 1);
  EXPECT_ERROR_MENTIONS(clip::GgufFile(bytes_of(v1), v1.size(), "v1.gguf"), "version 1");
}

}  // namespace
