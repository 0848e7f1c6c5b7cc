#include "workload_builder.hpp"

#include <array>
#include <cstring>

namespace duet {

namespace wl = core::workload;

void WorkloadBuilder::begin_program(const std::string& name) {
    wl::Program p{};
    std::strncpy(p.name, name.c_str(), sizeof p.name - 1);
    p.first = static_cast<uint32_t>(m_code.size());
    m_index[name] = static_cast<uint32_t>(m_programs.size());
    m_programs.push_back(p);
    m_slots.clear();
}

void WorkloadBuilder::end_program() {
    wl::Program& p = m_programs.back();
    p.count = static_cast<uint32_t>(m_code.size()) - p.first;
}

bool WorkloadBuilder::slot(const std::string& name, uint16_t* index) {
    auto it = m_slots.find(name);
    if (it == m_slots.end()) {
        if (m_slots.size() == wl::kMaxSlots) {
            return false;
        }
        it = m_slots.emplace(name, static_cast<uint16_t>(m_slots.size())).first;
    }
    *index = it->second;
    return true;
}

bool WorkloadBuilder::known_slot(const std::string& name) const {
    return m_slots.count(name) != 0;
}

namespace {

bool intern(std::map<std::string, uint16_t>& names, const std::string& name, uint16_t* index) {
    auto it = names.find(name);
    if (it == names.end()) {
        if (names.size() == wl::kMaxSyncObjects) {
            return false;
        }
        it = names.emplace(name, static_cast<uint16_t>(names.size())).first;
    }
    *index = it->second;
    return true;
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), p, p + sizeof(T));
}

} // namespace

bool WorkloadBuilder::mutex(const std::string& name, uint16_t* index) {
    return intern(m_mutexes, name, index);
}

bool WorkloadBuilder::event(const std::string& name, uint16_t* index) {
    return intern(m_events, name, index);
}

size_t WorkloadBuilder::emit(const wl::Instruction& in) {
    m_code.push_back(in);
    return m_code.size() - 1;
}

void WorkloadBuilder::spawn_in_program(size_t instruction, const std::string& program, int line,
                                       int col) {
    m_fixups.push_back({instruction, 0, {program, line, col}});
}

void WorkloadBuilder::spawn_at_start(const std::string& program, uint32_t count, uint8_t priority,
                                     uint32_t cpu, int line, int col) {
    wl::Spawn s{};
    s.count = count;
    s.priority = priority;
    s.cpu = cpu;
    m_spawns.push_back(s);
    m_fixups.push_back({SIZE_MAX, m_spawns.size() - 1, {program, line, col}});
}

const WorkloadBuilder::Unresolved* WorkloadBuilder::resolve() {
    for (const auto& f : m_fixups) {
        auto it = m_index.find(f.where.program);
        if (it == m_index.end()) {
            return &f.where;
        }
        if (f.instruction == SIZE_MAX) {
            m_spawns[f.spawn].program = it->second;
        } else {
            m_code[f.instruction].a = static_cast<uint16_t>(it->second);
        }
    }
    return nullptr;
}

std::vector<uint8_t> WorkloadBuilder::blob() const {
    wl::Header h{};
    std::memcpy(h.magic, wl::kMagic, sizeof h.magic);
    h.program_count = static_cast<uint32_t>(m_programs.size());
    h.spawn_count = static_cast<uint32_t>(m_spawns.size());
    h.instruction_count = static_cast<uint32_t>(m_code.size());
    h.mutex_count = static_cast<uint32_t>(m_mutexes.size());
    h.event_count = static_cast<uint32_t>(m_events.size());
    h.size = static_cast<uint32_t>(sizeof h + m_programs.size() * sizeof(wl::Program) +
                                   m_spawns.size() * sizeof(wl::Spawn) +
                                   m_code.size() * sizeof(wl::Instruction) +
                                   (m_mutexes.size() + m_events.size()) * wl::kNameLength);
    std::vector<uint8_t> out;
    out.reserve(h.size);
    append(out, h);
    for (const auto& p : m_programs) {
        append(out, p);
    }
    for (const auto& s : m_spawns) {
        append(out, s);
    }
    for (const auto& in : m_code) {
        append(out, in);
    }
    // The names, in index order (a longer one is cut to fit, its NUL kept).
    for (const auto* names : {&m_mutexes, &m_events}) {
        std::vector<std::array<char, wl::kNameLength>> by_index(names->size());
        for (const auto& [name, index] : *names) {
            by_index[index] = {};
            std::strncpy(by_index[index].data(), name.c_str(), wl::kNameLength - 1);
        }
        for (const auto& name : by_index) {
            append(out, name);
        }
    }
    return out;
}

} // namespace duet
