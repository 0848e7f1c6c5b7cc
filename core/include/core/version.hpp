#pragma once

namespace core {
inline constexpr const char kVersion[] = "0.1.0";
}
