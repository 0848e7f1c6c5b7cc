// Swarms as data: the shard a Slurm array task runs, a seed's results line, and `duet swarm
// merge` over results files (docs/swarm.md).

#include <run.hpp>
#include <swarm.hpp>
#include <text.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using duet::EnvironmentShard;
using duet::slurm_array_shard;

TEST(SlurmArrayShard, NoArrayTaskNoShard) {
    auto e = slurm_array_shard(nullptr, "4", "1", "4");
    EXPECT_FALSE(e.shard);
    EXPECT_EQ(e.error, "");
}

TEST(SlurmArrayShard, TheTaskIdCountsFromTheArraysFirst) {
    // --array=1-4: IDs 1..4 are shards 1..4.
    EXPECT_EQ(slurm_array_shard("1", "4", "1", "4").shard, (std::pair<uint32_t, uint32_t>{1, 4}));
    EXPECT_EQ(slurm_array_shard("4", "4", "1", "4").shard, (std::pair<uint32_t, uint32_t>{4, 4}));
    // --array=0-3: ID 0 is shard 1, ID 3 shard 4.
    EXPECT_EQ(slurm_array_shard("0", "4", "0", "3").shard, (std::pair<uint32_t, uint32_t>{1, 4}));
    EXPECT_EQ(slurm_array_shard("3", "4", "0", "3").shard, (std::pair<uint32_t, uint32_t>{4, 4}));
    // --array=10-13.
    EXPECT_EQ(slurm_array_shard("12", "4", "10", "13").shard,
              (std::pair<uint32_t, uint32_t>{3, 4}));
    // Without MIN (and MAX), IDs are taken to start at 1.
    auto e = slurm_array_shard("2", "3", nullptr, nullptr);
    EXPECT_EQ(e.shard, (std::pair<uint32_t, uint32_t>{2, 3}));
    EXPECT_EQ(e.origin, "SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=3");
}

TEST(SlurmArrayShard, ValuesThatNameNoShardAreRefusedSayingWhy) {
    auto refused = [](const char* id, const char* count, const char* min, const char* max) {
        EnvironmentShard e = slurm_array_shard(id, count, min, max);
        EXPECT_FALSE(e.shard) << id;
        EXPECT_NE(e.error.find("--shard K/M"), std::string::npos) << e.error;
        return e.error;
    };
    EXPECT_NE(refused("1", nullptr, nullptr, nullptr).find("SLURM_ARRAY_TASK_COUNT is not"),
              std::string::npos);
    EXPECT_NE(refused("x", "4", "1", "4").find("whole numbers"), std::string::npos);
    EXPECT_NE(refused("-1", "4", "1", "4").find("whole numbers"), std::string::npos);
    EXPECT_NE(refused("1", "4", " 1", "4").find("whole numbers"), std::string::npos);
    EXPECT_NE(refused("1", "99999999999999999999", "1", nullptr).find("whole numbers"),
              std::string::npos);
    // ID 0 with MIN unset: shard 0.
    EXPECT_NE(refused("0", "4", nullptr, nullptr).find("MIN unset: taken as 1"), std::string::npos);
    // An ID past the array, or before its first.
    refused("5", "4", "1", nullptr);
    refused("0", "4", "1", nullptr);
    refused("1", "0", "1", nullptr);
    // --array=1,3,5 or 0-15:4: COUNT tasks whose IDs are no range MIN..MIN+COUNT-1.
    EXPECT_NE(refused("3", "3", "1", "5").find("not one contiguous range"), std::string::npos);
    EXPECT_NE(refused("4", "4", "0", "12").find("not one contiguous range"), std::string::npos);
}

TEST(Sizes, ReadWithTheirUnitAndWrittenBackInTheLargestWholeOne) {
    EXPECT_EQ(duet::parse_size("2GiB"), uint64_t{2} << 30);
    EXPECT_EQ(duet::parse_size("2G"), uint64_t{2} << 30);
    EXPECT_EQ(duet::parse_size("512MiB"), uint64_t{512} << 20);
    EXPECT_EQ(duet::parse_size("64KiB"), uint64_t{64} << 10);
    EXPECT_EQ(duet::parse_size("4096B"), uint64_t{4096});
    EXPECT_EQ(duet::parse_size("1TiB"), uint64_t{1} << 40);
    for (const char* bad : {"", "2", "GiB", "2 GiB", "-1GiB", "1.5GiB", "0x10MiB", "2gb", "2GB",
                            "99999999999TiB", "18446744073709551616B"}) {
        EXPECT_FALSE(duet::parse_size(bad)) << bad;
    }
    EXPECT_EQ(duet::format_size(uint64_t{2} << 30), "2GiB");
    EXPECT_EQ(duet::format_size(uint64_t{1536} << 20), "1536MiB");
    EXPECT_EQ(duet::format_size(100), "100B");
    for (uint64_t v : {uint64_t{1}, uint64_t{4096}, uint64_t{3} << 40, uint64_t{123456789}}) {
        EXPECT_EQ(duet::parse_size(duet::format_size(v)), v);
    }
}

int exited(int status) {
    return status << 8; // a wait status, as WIFEXITED/WEXITSTATUS read it
}

TEST(Judge, TheReportSaysTheVerdictAndTheExitStatusHasTheLastWord) {
    duet::SeedResult ok;
    duet::judge(ok, R"({"seed":1,"digest":"ab12","verdict":"success","expectations":{"failed":0}})",
                exited(0));
    EXPECT_EQ(ok.verdict, "success");
    EXPECT_EQ(ok.digest, "ab12");
    EXPECT_EQ(ok.exit_status, 0);

    duet::SeedResult broke;
    duet::judge(broke, R"({"digest":"cd","verdict":"success","expectations":{"failed":2}})",
                exited(1));
    EXPECT_EQ(broke.verdict, "expectation failed");

    duet::SeedResult oom;
    duet::judge(oom, R"({"digest":"ef","verdict":"out of memory"})", exited(1));
    EXPECT_EQ(oom.verdict, "out of memory");

    duet::SeedResult crash;
    duet::judge(crash, "", SIGKILL);
    EXPECT_EQ(crash.verdict, "crash");
    EXPECT_EQ(crash.signal, SIGKILL);
    EXPECT_FALSE(crash.exit_status);
    EXPECT_FALSE(crash.digest);

    duet::SeedResult cut;
    duet::judge(cut, R"({"seed":1,"digest":"ab12","verd)", exited(0));
    EXPECT_EQ(cut.verdict, "no report");

    duet::SeedResult odd;
    duet::judge(odd, R"({"digest":"ab","verdict":"success"})", exited(3));
    EXPECT_EQ(odd.verdict, "exit status 3");
}

class MergeTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("duet-merge-test-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(m_dir);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::string write(const std::string& name, const std::string& text) {
        auto path = m_dir / name;
        std::ofstream(path) << text;
        return path.string();
    }

    static duet::SeedResult seed(uint64_t s, const std::string& verdict, uint64_t host_ns) {
        duet::SeedResult r;
        r.seed = s;
        r.scenario = "x.scn";
        r.verdict = verdict;
        r.digest = "d" + std::to_string(s);
        r.exit_status = verdict == "success" ? 0 : 1;
        r.host_cpu_ns = host_ns;
        r.peak_rss_bytes = 8 << 20;
        if (verdict != "success") {
            r.failure = "x.scn: run failed (seed " + std::to_string(s) + "): " + verdict;
        }
        r.reproduce = "duet run x.scn --seed " + std::to_string(s);
        return r;
    }

    // merge_results() on `files`: its status, and what it printed on out and err.
    int merge(const std::vector<std::string>& files,
              std::optional<std::pair<uint64_t, uint64_t>> expected = std::nullopt) {
        std::FILE* out = std::tmpfile();
        std::FILE* err = std::tmpfile();
        int status = duet::merge_results(files, expected, out, err);
        m_out = slurp(out);
        m_err = slurp(err);
        return status;
    }

    static std::string slurp(std::FILE* f) {
        std::rewind(f);
        std::string text;
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
            text.append(buf, n);
        }
        std::fclose(f);
        return text;
    }

    std::filesystem::path m_dir;
    std::string m_out;
    std::string m_err;
};

TEST_F(MergeTest, FailingSeedsFirstBySeedThenVerdictsSlowestAndTheCount) {
    auto a = write("a.jsonl", duet::result_line(seed(5, "deadlock", 300)) +
                                  duet::result_line(seed(1, "success", 100)) +
                                  duet::result_line(seed(3, "expectation failed", 900)));
    auto b = write("b.jsonl", duet::result_line(seed(2, "success", 500)) + "\n" +
                                  duet::result_line(seed(4, "success", 200)));
    EXPECT_EQ(merge({a, b}, std::pair<uint64_t, uint64_t>{1, 5}), duet::kExitFailed) << m_err;
    EXPECT_EQ(m_out, "FAIL  seed 3: x.scn: run failed (seed 3): expectation failed\n"
                     "      reproduce: duet run x.scn --seed 3\n"
                     "FAIL  seed 5: x.scn: run failed (seed 5): deadlock\n"
                     "      reproduce: duet run x.scn --seed 5\n"
                     "merge: 5 seeds from 2 files, seeds 1 to 5\n"
                     "missing: none of 1..5\n"
                     "verdicts: 3 success, 1 deadlock, 1 expectation failed\n"
                     "slowest:\n"
                     "  seed 3: 0.000 s of host CPU time, peak 8.0 MiB (expectation failed)\n"
                     "  seed 2: 0.000 s of host CPU time, peak 8.0 MiB (success)\n"
                     "  seed 5: 0.000 s of host CPU time, peak 8.0 MiB (deadlock)\n"
                     "  seed 4: 0.000 s of host CPU time, peak 8.0 MiB (success)\n"
                     "  seed 1: 0.000 s of host CPU time, peak 8.0 MiB (success)\n"
                     "merge: 3 passed, 2 failed\n");
}

TEST_F(MergeTest, EveryPassedSeedIsExitZeroAndAMissingSeedIsAFailure) {
    auto a = write("a.jsonl", duet::result_line(seed(1, "success", 1)) +
                                  duet::result_line(seed(3, "success", 1)));
    EXPECT_EQ(merge({a}), duet::kExitOk) << m_err;
    EXPECT_NE(m_out.find("merge: 2 passed, 0 failed\n"), std::string::npos) << m_out;
    EXPECT_EQ(merge({a}, std::pair<uint64_t, uint64_t>{1, 4}), duet::kExitFailed);
    EXPECT_NE(m_out.find("missing: 2 seeds of 1..4: 2, 4\n"), std::string::npos) << m_out;
    EXPECT_NE(m_out.find("merge: 2 passed, 0 failed, 2 missing\n"), std::string::npos) << m_out;
    // An empty shard (more shards than seeds) is no error.
    EXPECT_EQ(merge({a, write("empty.jsonl", "")}), duet::kExitOk) << m_err;
}

TEST_F(MergeTest, ABadLineIsRefusedWithItsFileAndLine) {
    std::string good = duet::result_line(seed(1, "success", 1));
    struct Case {
        std::string line;
        std::string says;
    };
    for (const Case& c : std::vector<Case>{
             {"{\"seed\":", "not a JSON line: parse error at line 1, column 9"},
             {"[1,2]", "not a JSON object"},
             {R"({"seed":-1})", "\"seed\" must be a whole number"},
             {R"({"seed":"7"})", "\"seed\" must be a whole number"},
             {R"({"seed":2,"host_cpu_ns":1,"peak_rss_bytes":1,"verdict":7})",
              "\"verdict\" must be a string"},
             {R"({"seed":2,"host_cpu_ns":1,"peak_rss_bytes":1,"verdict":"success",)"
              R"("reproduce":"r","scenario":"s","digest":5})",
              "\"digest\" must be a string or null"},
         }) {
        auto path = write("bad.jsonl", good + c.line + "\n");
        EXPECT_EQ(merge({path}), duet::kExitUsage) << c.line;
        EXPECT_EQ(m_err.rfind(path + ":2: " + c.says, 0), 0u) << m_err;
        EXPECT_EQ(m_out, "") << "nothing is summarised from bad input";
    }
}

TEST_F(MergeTest, ASeedInTwoPlacesIsAnError) {
    auto a = write("a.jsonl", duet::result_line(seed(1, "success", 1)) +
                                  duet::result_line(seed(2, "success", 1)));
    auto b = write("b.jsonl", duet::result_line(seed(2, "deadlock", 1)));
    EXPECT_EQ(merge({a, b}), duet::kExitUsage);
    EXPECT_EQ(m_err, b + ":1: seed 2 is also at " + a + ":2: a seed may be in one place only\n");
    // The same file twice is the same mistake.
    EXPECT_EQ(merge({a, a}), duet::kExitUsage);
}

TEST_F(MergeTest, FilesTooLargeOrNotFilesAreRefusedUnread) {
    auto big = m_dir / "big.jsonl";
    std::ofstream(big).close();
    std::filesystem::resize_file(big, duet::kMaxResultsFileBytes + 1); // sparse: no disk used
    EXPECT_EQ(merge({big.string()}), duet::kExitUsage);
    EXPECT_EQ(m_err, big.string() + ": is larger than 1024 MiB, the most a results file may be\n");
    EXPECT_EQ(merge({"/dev/zero"}), duet::kExitUsage);
    EXPECT_EQ(m_err, "/dev/zero:1: a line longer than 1024 KiB, the most a results line may be\n");
    EXPECT_EQ(merge({m_dir.string()}), duet::kExitUsage);
    EXPECT_EQ(m_err, m_dir.string() + ": is a directory, not a results file\n");
    EXPECT_EQ(merge({(m_dir / "none").string()}), duet::kExitUsage);
    EXPECT_NE(m_err.find(": cannot read the results file: No such file or directory"),
              std::string::npos)
        << m_err;
}

TEST_F(MergeTest, AResultLineReadsBackAsItWasWritten) {
    duet::SeedResult r = seed(42, "out of memory", 123456789);
    r.randomized = {"--cpus", "3", "--tick", "500us"};
    r.expectation = "x.scn:3: expectation failed: a == 1 (got 2)";
    r.exit_status.reset();
    r.signal = 9;
    std::string line = duet::result_line(r);
    EXPECT_EQ(line,
              R"j({"seed":42,"scenario":"x.scn","randomized":["--cpus","3","--tick","500us"],)j"
              R"j("verdict":"out of memory","digest":"d42","exit_status":null,"signal":9,)j"
              R"j("host_cpu_ns":123456789,"peak_rss_bytes":8388608,)j"
              R"j("failure":"x.scn: run failed (seed 42): out of memory",)j"
              R"j("expectation":"x.scn:3: expectation failed: a == 1 (got 2)",)j"
              R"j("reproduce":"duet run x.scn --seed 42"})j"
              "\n");
    EXPECT_EQ(merge({write("r.jsonl", line)}), duet::kExitFailed) << m_err;
    EXPECT_EQ(m_out.substr(0, m_out.find("merge:")),
              "FAIL  seed 42: x.scn: run failed (seed 42): out of memory\n"
              "      x.scn:3: expectation failed: a == 1 (got 2)\n"
              "      reproduce: duet run x.scn --seed 42\n");
}

} // namespace
