#include <scenario.hpp>
#include <source_error.hpp>
#include <text.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

std::string error_of(const std::string& text) {
    try {
        duet::parse_scenario(text, "s.scn");
    } catch (const duet::SourceError& e) {
        return e.what();
    }
    return "no error";
}

TEST(Scenario, MachineAndPreset) {
    auto s =
        duet::parse_scenario("# c\nmachine cpus=4 seed=0x10\nmemory preset=qemu-pc-2g\n", "s.scn");
    EXPECT_EQ(s.cpus, 4u);
    EXPECT_EQ(s.seed, 16u);
    EXPECT_EQ(s.memory.size(), 7u);
    EXPECT_EQ(s.memory_source, "preset qemu-pc-2g");
}

TEST(Scenario, InlineMemoryMap) {
    auto s = duet::parse_scenario("memory\n  0 0x9fc00 1\n  0x100000 0x4000000 1 # RAM\n"
                                  "machine cpus=2\n",
                                  "s.scn");
    ASSERT_EQ(s.memory.size(), 2u);
    EXPECT_EQ(s.memory[1].length, 0x4000000u);
    EXPECT_EQ(s.cpus, 2u);
}

TEST(Scenario, MemoryFileIsRelativeToTheScenario) {
    auto s = duet::parse_scenario("memory file=maps/qemu-q35-8g.e820\n",
                                  std::string(DUET_SOURCE_DIR) + "/scenarios/x.scn");
    EXPECT_EQ(s.memory.size(), 10u);
}

TEST(Scenario, FaultsCostsAndDurations) {
    auto s = duet::parse_scenario("memory preset=qemu-pc-2g\n"
                                  "machine livelock=5ms\n"
                                  "run until=2s limit=1.5s\n"
                                  "costs relax=50ns switch=1us irq_op=0ns\n"
                                  "faults frame_alloc=0.25 timer_late=5% late_max=20us\n",
                                  "s.scn");
    EXPECT_EQ(s.livelock_ns, 5'000'000u);
    EXPECT_EQ(s.time_limit_ns, 1'500'000'000u);
    EXPECT_EQ(s.until_ns, 2'000'000'000u);
    EXPECT_EQ(s.costs.relax, 50u);
    EXPECT_EQ(s.costs.context_switch, 1'000u);
    EXPECT_EQ(s.costs.irq_op, 0u);
    EXPECT_DOUBLE_EQ(s.faults.frame_alloc, 0.25);
    EXPECT_DOUBLE_EQ(s.faults.timer_late, 0.05);
    EXPECT_EQ(s.faults.late_max_ns, 20'000u);
}

TEST(Scenario, ErrorsPointAtTheMistake) {
    EXPECT_EQ(error_of("machin cpus=4\n"),
              "s.scn:1:1: unknown keyword 'machin'; did you mean 'machine'?");
    EXPECT_EQ(error_of("frobnicate\n"), "s.scn:1:1: unknown keyword 'frobnicate'");
    EXPECT_EQ(error_of("machine cpus=0\nmemory preset=qemu-pc-2g\n"),
              "s.scn:1:14: cpus must be a number from 1 to 256, not '0'");
    EXPECT_EQ(error_of("machine cpu=2\n"),
              "s.scn:1:9: 'machine' has no option 'cpu'; did you mean 'cpus'?");
    EXPECT_EQ(error_of("machine cpus\n"), "s.scn:1:9: expected key=value, found 'cpus'");
    EXPECT_EQ(error_of("machine cpus=2\n"),
              "s.scn:1:1: the scenario has no memory line (for example: memory "
              "preset=qemu-q35-2g)");
    EXPECT_EQ(error_of("memory preset=qemu-q35-2gb\n"),
              "s.scn:1:15: no memory preset 'qemu-q35-2gb'; did you mean 'qemu-q35-2g'?");
    EXPECT_EQ(error_of("memory preset=qemu-pc-2g\nmemory preset=qemu-pc-2g\n"),
              "s.scn:2:1: memory is already given on line 1");
    EXPECT_EQ(error_of("memory\nmachine cpus=1\n"),
              "s.scn:1:1: memory has no preset=, no file= and no indented E820 lines");
    EXPECT_EQ(error_of("memory\n  0 0x1000\n"),
              "s.scn:2:5: an E820 entry is BASE LENGTH TYPE [EXT], found 2 fields");
    EXPECT_EQ(error_of("  machine cpus=1\n"),
              "s.scn:1:3: unexpected indented line: only a block (an inline memory map, a "
              "program, a process) is indented");
    EXPECT_EQ(error_of("faults frame_aloc=0.1\n"),
              "s.scn:1:8: no fault point 'frame_aloc'; did you mean 'frame_alloc'?");
    EXPECT_EQ(error_of("faults frame_alloc=2\n"),
              "s.scn:1:8: frame_alloc must be a probability from 0 to 1 (or a percentage), not "
              "'2'");
    EXPECT_EQ(error_of("costs relax=0ns\n"),
              "s.scn:1:13: relax must be a duration such as 20ns (not zero), not '0ns'");
    EXPECT_EQ(error_of("run limit=10\n"),
              "s.scn:1:11: limit must be a duration such as 250us, 4ms or 1s, not '10'");
    EXPECT_EQ(error_of("run until=forever\n"),
              "s.scn:1:11: until must be exit, or a duration such as 250us, 4ms or 1s, not "
              "'forever'");
    EXPECT_EQ(error_of("expect memory.usable_frame == 1\n"),
              "s.scn:1:8: no metric 'memory.usable_frame'; did you mean 'memory.usable_frames'?");
    EXPECT_EQ(error_of("expect seed = 1\n"),
              "s.scn:1:13: '=' is not a comparison (==, !=, <, <=, >, >=)");
    EXPECT_EQ(error_of("expect seed == x1\n"), "s.scn:1:16: 'x1' is not a number");
    EXPECT_EQ(error_of("expect seed ==\n"),
              "s.scn:1:15: expect takes METRIC OP VALUE, for example: expect "
              "memory.leaked_frames == 0");
    EXPECT_EQ(error_of("memory file=nope.e820\n"),
              "s.scn:1:13: cannot read memory map file 'nope.e820'");
}

TEST(Scenario, MessagesShowOnlyPrintableCharactersAndShortenLongValues) {
    using duet::printable;
    using duet::shown;
    EXPECT_EQ(printable(std::string("a\x1b[2Jb\0c\x7f\xff", 10)), "a\\x1b[2Jb\\x00c\\x7f\\xff");
    // Well-formed UTF-8 stays; a C1 control, an overlong form and a cut sequence do not.
    EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
    EXPECT_EQ(printable("\xc2\x9b \xc0\xaf \xe2\x82"), "\\xc2\\x9b \\xc0\\xaf \\xe2\\x82");
    // Twice is once: a backslash is left as it is.
    EXPECT_EQ(printable(printable("\x01\\")), "\\x01\\");
    EXPECT_EQ(shown(std::string(60, 'x')), std::string(60, 'x'));
    EXPECT_EQ(shown(std::string(100'000, 'x')), std::string(60, 'x') + "...");
    EXPECT_EQ(shown(std::string(500, 'x'), duet::kShownPathLength), std::string(400, 'x') + "...");
    EXPECT_EQ(shown(std::string(100, '\x01')), [] {
        std::string s;
        for (int i = 0; i < 15; ++i) {
            s += "\\x01";
        }
        return s + "...";
    }());
    // Whatever a SourceError is given, it says it printably.
    EXPECT_EQ(std::string(duet::SourceError("f\x1b", 1, 2, std::string("x\0y", 3)).what()),
              "f\\x1b:1:2: x\\x00y");
}

TEST(Scenario, InputFilesAreReadOnlyUpToTheirBound) {
    EXPECT_THROW(
        {
            try {
                duet::read_input_file("/dev/zero", "scenario file");
            } catch (const duet::SourceError& e) {
                EXPECT_STREQ(e.what(),
                             "/dev/zero: is larger than 4 MiB, the most a scenario file may be");
                throw;
            }
        },
        duet::SourceError);
    EXPECT_THROW(
        {
            try {
                duet::load_scenario("/");
            } catch (const duet::SourceError& e) {
                EXPECT_STREQ(e.what(), "/: is a directory, not a scenario file");
                throw;
            }
        },
        duet::SourceError);
    // A file of exactly the bound is read.
    auto path = std::filesystem::temp_directory_path() / "duet-bound-test.e820";
    {
        std::ofstream out(path, std::ios::binary);
        std::string line = "0x100000 0x7fee0000 1\n";
        std::string text(duet::kMaxInputFileBytes - line.size(), '#');
        text[text.size() - 1] = '\n';
        out << text << line;
    }
    EXPECT_EQ(duet::read_input_file(path.string(), "memory map file").size(),
              duet::kMaxInputFileBytes);
    std::filesystem::remove(path);
}

TEST(Scenario, WhatTheLinesBeforeShowIsCheckedAndLoopsAreLeftToTheKernel) {
    const std::string head = "memory preset=qemu-q35-2g\nprogram p\n";
    // Fine: each round frees and locks again what the next unlocks or allocates.
    EXPECT_EQ(error_of(head + "  lock m\n  repeat 3\n    unlock m\n    lock m\n  unlock m\n"
                              "  alloc heap 64 as b\n  repeat 2\n    free b\n    alloc heap 8 as "
                              "b\n  free b\n  alloc heap 8 as b\nspawn p\n"),
              "no error");
    // A repeat's later rounds are the kernel's to catch (the run-time check).
    EXPECT_EQ(error_of(head + "  lock m\n  repeat 2\n    unlock m\nspawn p\n"), "no error");
    // Another program's lock is not this thread's.
    EXPECT_EQ(error_of("memory preset=qemu-q35-2g\nprogram a\n  lock m\nprogram b\n  unlock m\n"),
              "s.scn:5:10: unlock m: program 'b' does not lock m before this line, and a thread "
              "may unlock only a mutex it holds");
    // Eight repeats deep is what the kernel runs.
    std::string deep = head;
    std::string indent = "  ";
    for (int i = 0; i < 8; ++i) {
        deep += indent + "repeat 2\n";
        indent += "  ";
    }
    EXPECT_EQ(error_of(deep + indent + "yield\nspawn p\n"), "no error");
    EXPECT_EQ(error_of(deep + indent + "repeat 2\n" + indent + "  yield\nspawn p\n"),
              "s.scn:11:19: repeat blocks nest at most 8 deep");
    EXPECT_EQ(error_of("memory preset=qemu-q35-2g\nexpect digest != 0\n"),
              "s.scn:2:8: digest is text, not a number: expect compares numbers");
    EXPECT_EQ(error_of("memory preset=qemu-q35-2g\nrun limit=1s until=exit limit=2s\n"),
              "s.scn:2:25: limit is already given on this line, at column 5");
}

TEST(Scenario, AProgramThatNeverRunsIsAWarningNotAnError) {
    auto s = duet::parse_scenario("memory preset=qemu-q35-2g\n"
                                  "program main\n  spawn child\n"
                                  "program child\n  yield\n"
                                  "program spare\n  spawn orphan\n"
                                  "program orphan\n  yield\n"
                                  "spawn main\n",
                                  "s.scn");
    ASSERT_EQ(s.warnings.size(), 2u);
    EXPECT_EQ(s.warnings[0], "s.scn:6: warning: program 'spare' never runs: nothing that runs "
                             "spawns it");
    EXPECT_EQ(s.warnings[1], "s.scn:8: warning: program 'orphan' never runs: nothing that runs "
                             "spawns it");
}

TEST(Scenario, TheChecksTakeTimeInProportionToTheInput) {
    // A chain of programs, each spawning the one declared before it, and a line of distinct
    // options: both within the 4 MiB bound, both quadratic for a naive check.
    std::string chain = "memory preset=qemu-q35-2g\nprogram p0\n  yield\n";
    const int programs = 60'000;
    for (int i = 1; i < programs; ++i) {
        chain += "program p" + std::to_string(i) + "\n  spawn p" + std::to_string(i - 1) + "\n";
    }
    chain += "spawn p" + std::to_string(programs - 1) + "\n";
    std::string options = "memory preset=qemu-q35-2g\nmachine";
    for (int i = 0; i < 200'000; ++i) {
        options += " k" + std::to_string(i) + "=1";
    }
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(duet::parse_scenario(chain, "s.scn").warnings.empty());
    EXPECT_NE(
        error_of(options + " k7=2\n").find(": k7 is already given on this line, at column 44"),
        std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

} // namespace
