// clip-embed's sharded mode as a user runs it: kill -9 at several moments then rerun gives
// byte-identical outputs to an uninterrupted run; bad shards are reported and the rest done.

#include "tar_builder.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clip_test::TarBuilder;

const std::string source_dir = CLIP_SOURCE_DIR;
const std::string demo_model = source_dir + "/examples/models/clip-demo.safetensors";

/// Starts clip-embed with `args` (stdout and stderr to `log`); returns its pid.
pid_t start_embed(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out) ::dup2(::fileno(stdout), STDERR_FILENO);
    std::vector<char*> argv;
    static const std::string program = CLIP_EMBED_EXE;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

/// Every file under `root` by relative path, with its bytes.
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  if (!fs::exists(root)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), root).string()] = read_file(entry.path());
  return files;
}

std::size_t finished_shards(const fs::path& out) {
  std::size_t count = 0;
  if (fs::exists(out / "img_emb"))
    for (const auto& entry : fs::directory_iterator(out / "img_emb"))
      count += entry.path().extension() == ".npy";
  return count;
}

TEST(ScaleTools, KillNineAtAnyMomentThenRerunGivesTheUninterruptedBytes) {
  const auto dir = clip_test::scratch_dir("kill-nine");
  // 200 demo images, 20 shards of 10; one thread so a run lasts long enough to be cut.
  const std::vector<std::string> common = {"--model", demo_model, "--input", source_dir + "/tests/data/demo",
                                           "--shard-size", "10", "--threads", "1", "--decode-threads", "1",
                                           "--batch", "4"};
  auto with_output = [&](const fs::path& out) {
    std::vector<std::string> args = common;
    args.push_back("--output-dir");
    args.push_back(out.string());
    return args;
  };
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(start_embed(with_output(dir / "reference"), (dir / "reference.log").string())), 0)
      << read_file(dir / "reference.log");
  const double run_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const auto reference = tree(dir / "reference");
  ASSERT_EQ(reference.size(), 40u);  // 20 x (metadata + img_emb); no captions, no text_emb

  // Kill at fractions of an uninterrupted run's time (twice in a row for some), then rerun.
  std::size_t cut_mid_run = 0;
  const std::vector<std::vector<double>> kill_plans = {{0.05}, {0.2}, {0.35}, {0.5}, {0.65}, {0.8}, {0.95}, {0.3, 0.6}};
  for (std::size_t plan = 0; plan < kill_plans.size(); ++plan) {
    const fs::path out = dir / ("run" + std::to_string(plan));
    for (double fraction : kill_plans[plan]) {
      const pid_t pid = start_embed(with_output(out), (dir / "killed.log").string());
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(fraction * run_ms * 1000)));
      ::kill(pid, SIGKILL);
      wait_for(pid);
      const std::size_t done = finished_shards(out);
      cut_mid_run += done > 0 && done < 20;
      // Whatever is there is whole: every finished shard's files equal the reference's.
      for (const auto& [name, bytes] : tree(out)) {
        if (name.find(".tmp-") != std::string::npos) continue;  // a temporary the kill left
        ASSERT_TRUE(reference.count(name)) << name;
        EXPECT_EQ(bytes, reference.at(name)) << "after kill -9, " << name << " differs";
      }
    }
    ASSERT_EQ(wait_for(start_embed(with_output(out), (dir / "rerun.log").string())), 0) << read_file(dir / "rerun.log");
    const auto rerun = tree(out);
    EXPECT_EQ(rerun.size(), reference.size()) << "plan " << plan;
    EXPECT_TRUE(rerun == reference) << "plan " << plan << ": the rerun's bytes differ from an uninterrupted run";
  }
  // The test proves something only if some kills landed while shards were being written.
  EXPECT_GE(cut_mid_run, 3u) << "kills did not land mid-run (an uninterrupted run took " << run_ms << " ms)";
  std::printf("  uninterrupted run %.0f ms; %zu of the kills left a partly finished output\n", run_ms, cut_mid_run);
}

std::string png_bomb() {  // IHDR of a 100000x100000 gray PNG, a one-byte IDAT
  std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (std::uint32_t v : {100000u, 100000u})
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<char>(v >> shift));
  png += std::string("\x08\0\0\0\0\0\0\0\0", 9);
  png += std::string("\0\0\0\x01IDATx\0\0\0\0", 13);
  return png;
}

TEST(ScaleTools, BadShardsAreReportedAndTheRestIsDone) {
  const auto dir = clip_test::scratch_dir("bad-shards");
  fs::create_directories(dir / "shards");
  const std::string image = read_file(source_dir + "/tests/data/demo/000.png");
  TarBuilder good;  // 000000: fine, with captions
  good.file("a.png", image).file("a.txt", "first").file("b.png", image).file("b.txt", "second").end();
  good.write_gzip((dir / "shards" / "000000.tar.gz").string());
  // 000001.tar.gz: missing (unreadable)
  TarBuilder bad;  // 000002: duplicates, a caption without an image, a bomb, then a truncated member
  bad.file("c.png", image).file("d.txt", "alone").file("c.png", image).file("e.png", png_bomb())
      .file("f.png", image).truncated_file("g.png", 5000, image.substr(0, 10));
  bad.write_gzip((dir / "shards" / "000002.tar.gz").string());

  const fs::path out = dir / "out";
  const std::string log = (dir / "log").string();
  const int status = wait_for(start_embed({"--model", demo_model, "--input", (dir / "shards" / "{000000..000002}.tar.gz").string(),
                                           "--output-dir", out.string()},
                                          log));
  const std::string stderr_text = read_file(log);
  EXPECT_EQ(status, 1) << stderr_text;  // some inputs failed
  EXPECT_NE(stderr_text.find("000001"), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("cannot open"), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("duplicate key"), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("truncated"), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("exceeds the limit"), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("caption without an image"), std::string::npos) << stderr_text;

  const auto files = tree(out);
  EXPECT_EQ(files.count("img_emb/img_emb_000000.npy"), 1u);
  EXPECT_EQ(files.count("text_emb/text_emb_000000.npy"), 1u);
  EXPECT_EQ(files.count("img_emb/img_emb_000002.npy"), 1u);
  for (const auto& [name, bytes] : files) {
    EXPECT_EQ(name.find("000001"), std::string::npos) << "the unreadable shard left " << name;
    EXPECT_EQ(name.find(".tmp-"), std::string::npos) << name;
  }
  std::vector<nlohmann::json> lines;
  std::ifstream metadata(out / "metadata" / "metadata_000002.jsonl");
  for (std::string line; std::getline(metadata, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 6u);  // rows c, f; errors d, c (duplicate), e, and the truncated shard
  EXPECT_EQ(lines[0]["key"], "c");
  EXPECT_EQ(lines[1]["key"], "f");
  EXPECT_TRUE(lines[5].contains("shard")) << lines[5];

  // A rerun skips the two finished shards and retries the missing one (still missing: status 1).
  const int again = wait_for(start_embed({"--model", demo_model, "--input", (dir / "shards" / "{000000..000002}.tar.gz").string(),
                                          "--output-dir", out.string()},
                                         log));
  EXPECT_EQ(again, 1);
  EXPECT_NE(read_file(log).find("2 shard(s) already finished"), std::string::npos) << read_file(log);
  EXPECT_TRUE(tree(out) == files);
}

}  // namespace
