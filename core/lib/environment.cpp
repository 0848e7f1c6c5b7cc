#include <core/lib/environment.hpp>

namespace core {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

} // namespace

bool env_get(const char* env, const char* key, char* out, size_t capacity) {
    if (env == nullptr || capacity == 0) {
        return false;
    }
    bool found = false;
    const char* p = env;
    bool in_block_comment = false;
    while (*p != '\0') {
        // One line at a time.
        const char* line = p;
        while (*p != '\0' && *p != '\n') {
            ++p;
        }
        const char* end = p;
        if (*p == '\n') {
            ++p;
        }
        const char* s = line;
        if (in_block_comment) {
            while (s + 1 < end && !(s[0] == '*' && s[1] == '/')) {
                ++s;
            }
            if (s + 1 >= end) {
                continue;
            }
            in_block_comment = false;
            s += 2;
        }
        while (s < end && is_space(*s)) {
            ++s;
        }
        if (s + 1 < end && s[0] == '/' && s[1] == '*') {
            in_block_comment = true;
            continue;
        }
        if (s == end || *s == '#' || (s + 1 < end && s[0] == '/' && s[1] == '/')) {
            continue;
        }
        const char* k = key;
        while (*k != '\0' && s < end && *s == *k) {
            ++s;
            ++k;
        }
        if (*k != '\0' || s == end || *s != '=') {
            continue;
        }
        ++s;
        size_t n = 0;
        while (s < end && !is_space(*s) && n + 1 < capacity) {
            out[n++] = *s++;
        }
        out[n] = '\0';
        found = true; // keep looking: the last occurrence wins
    }
    return found;
}

uint64_t env_number(const char* env, const char* key, uint64_t fallback) {
    char buf[24];
    if (!env_get(env, key, buf, sizeof buf) || buf[0] == '\0') {
        return fallback;
    }
    uint64_t v = 0;
    for (const char* c = buf; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9' || v > (~uint64_t{0} - 9) / 10) {
            return fallback;
        }
        v = v * 10 + static_cast<uint64_t>(*c - '0');
    }
    return v;
}

uint64_t env_duration(const char* env, const char* key, uint64_t fallback) {
    char buf[24];
    if (!env_get(env, key, buf, sizeof buf) || buf[0] == '\0') {
        return fallback;
    }
    uint64_t v = 0;
    const char* c = buf;
    for (; *c >= '0' && *c <= '9'; ++c) {
        if (v > (~uint64_t{0} - 9) / 10) {
            return fallback;
        }
        v = v * 10 + static_cast<uint64_t>(*c - '0');
    }
    uint64_t unit = 0;
    if (c[0] == 'n' && c[1] == 's' && c[2] == '\0') {
        unit = 1;
    } else if (c[0] == 'u' && c[1] == 's' && c[2] == '\0') {
        unit = 1'000;
    } else if (c[0] == 'm' && c[1] == 's' && c[2] == '\0') {
        unit = 1'000'000;
    } else if (c[0] == 's' && c[1] == '\0') {
        unit = 1'000'000'000;
    }
    if (unit == 0 || c == buf || v > ~uint64_t{0} / unit) {
        return fallback;
    }
    return v * unit;
}

} // namespace core
