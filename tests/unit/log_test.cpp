#include "test_support.hpp"

#include <core/lib/log.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

std::string logged(void (*fn)()) {
    hal_sim::MachineConfig config;
    config.memory = duet::test::fixture("qemu-q35-2g");
    hal_sim::Machine m(config);
    {
        hal_sim::Machine::CpuScope scope(m, 0);
        fn();
    }
    return m.com1().transcript();
}

TEST(LogLine, FormatsNumbersAndSizes) {
    EXPECT_EQ(logged([] { core::LogLine("t").dec(0).chr(' ').dec(18446744073709551615ull); }),
              "t: 0 18446744073709551615\n");
    EXPECT_EQ(logged([] { core::LogLine("t").hex(0x9fc00).chr(' ').hex(0xab, 2); }),
              "t: 0x000000000009fc00 0xab\n");
    EXPECT_EQ(logged([] {
                  core::LogLine("t")
                      .size(0)
                      .chr(',')
                      .size(17)
                      .chr(',')
                      .size(0x400)
                      .chr(',')
                      .size(3 << 20)
                      .chr(',')
                      .size(12ull << 30)
                      .chr(',')
                      .size(0x9fc00);
              }),
              "t: 0 B,17 B,1 KiB,3 MiB,12 GiB,639 KiB\n");
}

TEST(LogLine, OneWritePerLineAndEndIsIdempotent) {
    EXPECT_EQ(logged([] {
                  core::LogLine l("t");
                  l.str("x");
                  l.end();
                  l.end();
              }),
              "t: x\n");
}

TEST(LogLine, OverlongLinesAreCutButKeepTheirNewline) {
    std::string out = logged([] {
        core::LogLine l("t");
        for (int i = 0; i < 50; ++i) {
            l.str("abcdef");
        }
    });
    EXPECT_EQ(out.size(), core::LogLine::kCapacity);
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1);
}

} // namespace
