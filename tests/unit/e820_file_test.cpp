#include "test_support.hpp"

#include <e820_file.hpp>
#include <source_error.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

std::string error_of(const std::string& text) {
    try {
        duet::parse_e820(text, "m.e820");
    } catch (const duet::SourceError& e) {
        return e.what();
    }
    return "no error";
}

TEST(E820File, ReadsTheFixtures) {
    auto map = duet::test::fixture("qemu-q35-8g");
    ASSERT_EQ(map.size(), 10u);
    EXPECT_EQ(map[8].base, 0x100000000u);
    EXPECT_EQ(map[8].length, 0x180000000u);
    EXPECT_EQ(map[8].type, 1u);
    EXPECT_EQ(map[8].ext_attrs, 1u);
}

TEST(E820File, DecimalHexCommentsAndExtendedAttributes) {
    auto map = duet::parse_e820("# a map\n\n0 654336 1 # low\n0x100000 0x7fee0000 1 0\n", "m");
    ASSERT_EQ(map.size(), 2u);
    EXPECT_EQ(map[0].length, 0x9fc00u);
    EXPECT_EQ(map[1].ext_attrs, 0u);
}

TEST(E820File, ErrorsNameFileLineAndColumn) {
    EXPECT_EQ(error_of("0 0x1000 1\n0x1000 zz 1\n"),
              "m.e820:2:8: length 'zz' is not a number (decimal, or hex with 0x)");
    EXPECT_EQ(error_of("0 0x1000\n"),
              "m.e820:1:3: an E820 entry is BASE LENGTH TYPE [EXT], found 2 fields");
    EXPECT_EQ(error_of("0 1 1 1 1\n"),
              "m.e820:1:9: an E820 entry is BASE LENGTH TYPE [EXT], found 5 fields");
    EXPECT_EQ(error_of("0x10000000000000 0x1000 1\n"),
              "m.e820:1:1: entry [0x10000000000000, +0x1000) reaches beyond the 52-bit physical "
              "address space of x86_64");
    EXPECT_EQ(error_of("0xffffffff000 0xfffffffffffff 1\n"),
              "m.e820:1:15: entry [0xffffffff000, +0xfffffffffffff) reaches beyond the 52-bit "
              "physical address space of x86_64");
    EXPECT_EQ(error_of("0 0x1000 0x100000000\n"), "m.e820:1:10: type does not fit in 32 bits");
    EXPECT_EQ(error_of("0 99999999999999999999 1\n"),
              "m.e820:1:3: length '99999999999999999999' is not a number (decimal, or hex with "
              "0x)");
    EXPECT_EQ(error_of("# nothing\n"), "m.e820:1:1: the memory map has no entries");
}

TEST(E820File, MissingFileIsAnError) {
    EXPECT_THROW(duet::read_e820_file("/nonexistent/map.e820"), duet::SourceError);
}

TEST(E820File, PresetsAreTheFixtures) {
    ASSERT_NE(duet::e820_preset("qemu-q35-2g"), nullptr);
    EXPECT_EQ(duet::parse_e820(duet::e820_preset("qemu-q35-2g"), "p").size(),
              duet::test::fixture("qemu-q35-2g").size());
    EXPECT_EQ(duet::e820_preset("qemu-q35-4g"), nullptr);
    EXPECT_EQ(duet::e820_preset_names().size(), 4u);
}

} // namespace
