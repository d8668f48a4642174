// Tar and WebDataset reading: ustar, GNU long names, pax, gzip, grouping by key, and refusal
// of truncated or corrupt archives (no Eigen here: this TU compiles fast).

#include <clip/formats/tar.hpp>

#include "tar_builder.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using clip_test::TarBuilder;

std::vector<clip::TarMember> members_of(const std::string& bytes) {
  clip::TarReader reader = clip::open_tar_memory(bytes.data(), bytes.size(), "test.tar");
  std::vector<clip::TarMember> members;
  clip::TarMember member;
  while (reader.next(member)) members.push_back(member);
  return members;
}

std::string text(const std::vector<std::uint8_t>& data) { return std::string(data.begin(), data.end()); }

std::string error_of(const std::string& bytes) {
  try {
    members_of(bytes);
  } catch (const clip::Error& e) {
    return e.what();
  }
  return "(no clip::Error)";
}

TEST(Tar, ReadsUstarMembersInOrderAndSkipsDirectories) {
  TarBuilder tar;
  tar.directory("shard/").file("shard/a.txt", "hello").file("shard/b.bin", std::string(1000, 'x')).file("empty", "").end();
  const auto members = members_of(tar.bytes());
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].path, "shard/a.txt");
  EXPECT_EQ(text(members[0].data), "hello");
  EXPECT_EQ(members[1].data.size(), 1000u);
  EXPECT_EQ(members[2].path, "empty");
  EXPECT_TRUE(members[2].data.empty());
}

TEST(Tar, JoinsUstarPrefixGnuLongNamesAndPaxPaths) {
  const std::string long_path = std::string(150, 'd') + "/" + std::string(80, 'n') + ".jpg";
  TarBuilder tar;
  tar.file_with_prefix("some/folder", "x.txt", "1").gnu_long_name(long_path, "2").pax_path("pax/" + long_path, "3").end();
  const auto members = members_of(tar.bytes());
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].path, "some/folder/x.txt");
  EXPECT_EQ(members[1].path, long_path);
  EXPECT_EQ(text(members[1].data), "2");
  EXPECT_EQ(members[2].path, "pax/" + long_path);
  EXPECT_EQ(text(members[2].data), "3");
}

TEST(Tar, AcceptsAnArchiveWithoutEndBlocks) {
  TarBuilder tar;
  tar.file("a.txt", "x");
  EXPECT_EQ(members_of(tar.bytes()).size(), 1u);
  EXPECT_TRUE(members_of("").empty());
}

TEST(Tar, ReadsGzipCompressedArchives) {
  TarBuilder tar;
  tar.file("a.txt", "compressed").file("b.txt", std::string(70000, 'y')).end();
  const std::string path = testing::TempDir() + "/clip_tar_test.tar.gz";
  tar.write_gzip(path);
  clip::TarReader reader = clip::open_tar_file(path);
  clip::TarMember member;
  ASSERT_TRUE(reader.next(member));
  EXPECT_EQ(text(member.data), "compressed");
  ASSERT_TRUE(reader.next(member));
  EXPECT_EQ(member.data.size(), 70000u);
  EXPECT_FALSE(reader.next(member));

  // Cut the compressed file short: a clear error, not a silent end.
  std::ifstream in(path, std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = gz.substr(0, gz.size() / 2);
  const std::string message = error_of(cut);
  EXPECT_NE(message.find("test.tar"), std::string::npos) << message;
  EXPECT_NE(message.find("gzip"), std::string::npos) << message;
}

TEST(Tar, TruncatedMemberIsAnErrorNamingIt) {
  TarBuilder tar;
  tar.file("ok.txt", "fine").truncated_file("cut.jpg", 5000, std::string(100, 'z'));
  clip::TarReader reader = clip::open_tar_memory(tar.bytes().data(), tar.bytes().size(), "shard.tar");
  clip::TarMember member;
  ASSERT_TRUE(reader.next(member));
  EXPECT_EQ(member.path, "ok.txt");
  try {
    reader.next(member);
    FAIL() << "truncated member accepted";
  } catch (const clip::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("shard.tar"), std::string::npos) << message;
    EXPECT_NE(message.find("cut.jpg"), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  }
  EXPECT_EQ(reader.failed_path(), "cut.jpg");
}

TEST(Tar, CorruptHeadersAreRefused) {
  TarBuilder tar;
  tar.file("a.txt", "x").end();
  std::string bad_checksum = tar.bytes();
  bad_checksum[0] = 'b';
  EXPECT_NE(error_of(bad_checksum).find("checksum"), std::string::npos);
  EXPECT_NE(error_of(std::string(700, 'q')).find("test.tar"), std::string::npos);
  EXPECT_NE(error_of(tar.bytes().substr(0, 300)).find("truncated tar header"), std::string::npos);
}

TEST(Tar, HugeClaimedSizeIsRefusedWithoutAllocatingIt) {
  TarBuilder tar;
  tar.truncated_file("big.jpg", std::size_t{1} << 32, "abc");  // 4 GiB claimed, 3 bytes present
  const std::string message = error_of(tar.bytes());
  EXPECT_NE(message.find("larger than the limit"), std::string::npos) << message;
  clip::TarLimits limits;
  limits.max_member_bytes = std::uint64_t{1} << 40;  // over the limit's default: read in chunks, then truncated
  clip::TarReader reader = clip::open_tar_memory(tar.bytes().data(), tar.bytes().size(), "t.tar", limits);
  clip::TarMember member;
  EXPECT_THROW(reader.next(member), clip::Error);
}

// ----------------------------------------------------------------------------------------------

std::vector<clip::WebDatasetSample> samples_of(const std::string& bytes, std::string* error = nullptr) {
  clip::WebDatasetReader reader(clip::open_tar_memory(bytes.data(), bytes.size(), "shard.tar"));
  std::vector<clip::WebDatasetSample> samples;
  clip::WebDatasetSample sample;
  try {
    while (reader.next(sample)) samples.push_back(sample);
  } catch (const clip::Error& e) {
    if (!error) throw;
    *error = e.what();
  }
  return samples;
}

TEST(WebDataset, GroupsConsecutiveMembersByKey) {
  TarBuilder tar;
  tar.file("d/000.jpg", "J0").file("d/000.txt", "a cat").file("d/000.json", "{}")
      .file("d/001.PNG", "P1")
      .file("d/002.seg.png", "S2").file("d/002.jpeg", "J2").file("d/002.txt", "two")
      .file("README", "no extension: ignored").end();
  const auto samples = samples_of(tar.bytes());
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].key, "d/000");
  EXPECT_EQ(samples[0].image_extension, "jpg");
  EXPECT_EQ(text(samples[0].image), "J0");
  EXPECT_EQ(samples[0].caption, std::optional<std::string>("a cat"));
  EXPECT_EQ(samples[1].key, "d/001");
  EXPECT_EQ(samples[1].image_extension, "png");  // extensions compared in lower case
  EXPECT_FALSE(samples[1].caption);
  EXPECT_EQ(samples[2].key, "d/002");  // "002.seg.png" has key "d/002", extension "seg.png"
  EXPECT_EQ(samples[2].image_extension, "jpeg");
  EXPECT_EQ(text(samples[2].image), "J2");
  for (const auto& s : samples) EXPECT_TRUE(s.error.empty()) << s.key << ": " << s.error;
}

TEST(WebDataset, ReportsDuplicateKeysCaptionsWithoutImagesAndWebp) {
  TarBuilder tar;
  tar.file("a.jpg", "1").file("b.txt", "lonely caption").file("a.jpg", "again").file("c.webp", "W").end();
  const auto samples = samples_of(tar.bytes());
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_TRUE(samples[0].error.empty());
  EXPECT_NE(samples[1].error.find("caption without an image"), std::string::npos) << samples[1].error;
  EXPECT_NE(samples[2].error.find("duplicate key 'a'"), std::string::npos) << samples[2].error;
  EXPECT_TRUE(samples[2].image.empty());
  EXPECT_NE(samples[3].error.find("webp"), std::string::npos) << samples[3].error;

  TarBuilder twice;  // the same member name twice in a row: one sample, and unclear which image
  twice.file("x.jpg", "1").file("x.jpg", "2").file("y.jpg", "3").end();
  const auto doubled = samples_of(twice.bytes());
  ASSERT_EQ(doubled.size(), 2u);
  EXPECT_NE(doubled[0].error.find("duplicate member 'x.jpg'"), std::string::npos) << doubled[0].error;
  EXPECT_TRUE(doubled[0].image.empty());
  EXPECT_TRUE(doubled[1].error.empty());
}

TEST(WebDataset, TruncatedMemberFailsItsSampleAndEndsTheShard) {
  TarBuilder tar;
  tar.file("0.jpg", "a").file("1.jpg", "b").file("1.txt", "x").truncated_file("1.json", 900, "{");
  std::string error;
  const auto samples = samples_of(tar.bytes(), &error);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_TRUE(samples[0].error.empty());
  EXPECT_NE(samples[1].error.find("1.json"), std::string::npos) << samples[1].error;
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;

  TarBuilder next_key;  // the cut member starts a new key: the sample before it is whole
  next_key.file("0.jpg", "a").truncated_file("1.jpg", 900, "b");
  error.clear();
  const auto whole = samples_of(next_key.bytes(), &error);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_TRUE(whole[0].error.empty());
  EXPECT_NE(error.find("1.jpg"), std::string::npos) << error;
}

// GNU tar's own archives (when tar is installed): pax and GNU formats, with long names.
TEST(WebDataset, ReadsArchivesMadeByGnuTar) {
  if (std::system("tar --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "GNU tar not installed";
  const std::string dir = testing::TempDir() + "/clip_gnu_tar";
  const std::string long_dir = std::string(120, 'l');
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir + "/src/" + long_dir).c_str()), 0);
  std::ofstream(dir + "/src/" + long_dir + "/k1.jpg") << "image one";
  std::ofstream(dir + "/src/" + long_dir + "/k1.txt") << "caption one";
  for (const char* format : {"gnu", "pax", "ustar"}) {
    const std::string archive = dir + "/" + format + ".tar";
    const std::string command = "cd " + dir + "/src && tar --format=" + format + " --sort=name -cf " + archive +
                                " " + long_dir + " 2> /dev/null";
    if (std::system(command.c_str()) != 0) {
      EXPECT_STREQ(format, "ustar") << "tar failed for --format=" << format;  // ustar: name too long for it
      continue;
    }
    std::ifstream in(archive, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const auto samples = samples_of(bytes);
    ASSERT_EQ(samples.size(), 1u) << format;
    EXPECT_EQ(samples[0].key, long_dir + "/k1") << format;
    EXPECT_EQ(text(samples[0].image), "image one") << format;
    EXPECT_EQ(samples[0].caption, std::optional<std::string>("caption one")) << format;
  }
}

}  // namespace
