#include <hal_sim/error.hpp>
#include <hal_sim/machine.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hal_sim {

namespace {

Machine* s_current = nullptr;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
    return buf;
}

} // namespace

const char* describe(Verdict v) {
    switch (v) {
    case Verdict::Success:
        return "success";
    case Verdict::Failure:
        return "failure";
    case Verdict::Panic:
        return "panic";
    case Verdict::Stuck:
        return "stuck";
    }
    return "unknown";
}

Machine::Machine(MachineConfig config)
    : m_config(std::move(config)), m_ram(m_config.memory),
      m_plan(firmware::plan_boot_area(m_config.cpus)) {
    if (m_config.cpus == 0 || m_config.cpus > bootboot_abi::kMaxCores) {
        throw ConfigError("the machine must have 1 to 256 CPUs, not " +
                          std::to_string(m_config.cpus));
    }
    write_boot_information();
    for (uint32_t i = 0; i < m_config.cpus; ++i) {
        auto cpu = std::make_unique<SimCpu>();
        cpu->index = i;
        // NOTE: the BOOTBOOT stacks are 1 KiB, but in the simulator the CPUs start on host
        // stacks: the 1 KiB limit is the kernel build's check, not the simulator's.
        cpu->boot_stack = FiberStack(FiberStack::kDefaultSize);
        cpu->resume =
            fctx::make_fcontext(cpu->boot_stack.top(), cpu->boot_stack.size(), &Machine::cpu_entry);
        m_cpus.push_back(std::move(cpu));
    }
}

Machine::~Machine() = default;

Machine* Machine::current() {
    return s_current;
}

// The firmware: what Duet's QEMU loader does, on simulated RAM, with the same placement.
void Machine::write_boot_information() {
    const auto& map = m_config.memory;
    if (auto err = firmware::check_boot_area(map.data(), map.size(), m_plan);
        err != firmware::FirmwareError::None) {
        throw ConfigError(std::string(firmware::describe(err)) + " (it needs [" +
                          hex(firmware::kBootAreaBase) + ", " + hex(m_plan.end) + "))");
    }
    // The loader hands over zeroed pages for everything it allocated but the images.
    std::memset(m_ram.at(m_plan.tables), 0, m_plan.end - m_plan.tables);

    auto* info = static_cast<bootboot_abi::Info*>(m_ram.at(m_plan.bootboot));
    size_t count = 0;
    if (auto err = firmware::build_mmap(map.data(), map.size(), m_plan, info->mmap, &count);
        err != firmware::FirmwareError::None) {
        throw ConfigError(firmware::describe(err));
    }
    auto& h = info->header;
    std::memcpy(h.magic, bootboot_abi::kMagic, sizeof h.magic);
    h.size = static_cast<uint32_t>(sizeof(bootboot_abi::Header) +
                                   count * sizeof(bootboot_abi::MmapEntry));
    h.protocol = bootboot_abi::kProtocolStatic | bootboot_abi::kLoaderBios;
    h.numcores = static_cast<uint16_t>(m_config.cpus);
    h.bspid = 0;
    std::memcpy(h.datetime, m_config.datetime.data(), sizeof h.datetime);
    // FIXME: the simulated firmware places no initrd yet; the window is reserved all the same.
    h.initrd_ptr = m_plan.initrd;
    h.initrd_size = 0;

    auto* env = static_cast<char*>(m_ram.at(m_plan.environment));
    size_t n = std::min(m_config.environment.size(), bootboot_abi::kEnvironmentSize - 1);
    std::memcpy(env, m_config.environment.data(), n);
    env[n] = '\0';

    m_boot_info.bootboot = info;
    m_boot_info.environment = env;
}

void Machine::cpu_entry(fctx::transfer_t from) {
    Machine& m = *s_current;
    SimCpu& cpu = m.current_cpu();
    cpu.executor = from.fctx;
    // Every core enters at once, as under BOOTBOOT; the one whose id is bspid boots.
    if (cpu.index == m.m_boot_info.bootboot->header.bspid) {
        core::boot_main(m.m_boot_info);
    }
    // FIXME: application processors wait for a release the core cannot give yet.
    for (;;) {
        m.idle();
    }
}

SimCpu* Machine::pick_next() {
    SimCpu* best = nullptr;
    for (auto& cpu : m_cpus) {
        if (cpu->state != SimCpu::State::Running) {
            continue;
        }
        if (best == nullptr || cpu->clock_ns < best->clock_ns) {
            best = cpu.get();
        }
    }
    return best;
}

RunResult Machine::run() {
    s_current = this;
    while (!m_halted) {
        SimCpu* cpu = pick_next();
        if (cpu == nullptr) {
            m_result = {Verdict::Stuck, "every CPU waits for an interrupt and none is pending"};
            break;
        }
        m_current = cpu;
        fctx::transfer_t back = fctx::jump_fcontext(cpu->resume, nullptr);
        m_current->resume = back.fctx;
        m_current = nullptr;
    }
    s_current = nullptr;
    m_com1.flush();
    return m_result;
}

Machine::CpuScope::CpuScope(Machine& machine, uint32_t cpu) {
    if (s_current != nullptr || cpu >= machine.m_cpus.size()) {
        std::fputs("duet: CpuScope inside a running machine or for a CPU it does not have\n",
                   stderr);
        std::abort();
    }
    s_current = &machine;
    machine.m_current = machine.m_cpus[cpu].get();
    machine.m_borrowed = true;
}

Machine::CpuScope::~CpuScope() {
    s_current->m_current = nullptr;
    s_current->m_borrowed = false;
    s_current = nullptr;
}

void Machine::yield_to_executor() {
    if (m_borrowed) {
        std::fputs("duet: a preemption point was reached under a CpuScope (outside run())\n",
                   stderr);
        std::abort();
    }
    fctx::transfer_t back = fctx::jump_fcontext(m_current->executor, nullptr);
    m_current->executor = back.fctx;
}

void Machine::idle() {
    m_current->state = SimCpu::State::Idle;
    yield_to_executor();
}

void Machine::halt(hal::ExitCode code) {
    m_halted = true;
    switch (code) {
    case hal::ExitCode::Success:
        m_result = {Verdict::Success, {}};
        break;
    case hal::ExitCode::Failure:
        m_result = {Verdict::Failure, "the kernel reported failure"};
        break;
    case hal::ExitCode::Panic:
        m_result = {Verdict::Panic, "the kernel panicked"};
        break;
    default:
        m_result = {Verdict::Panic, "the kernel stopped with unknown code " +
                                        std::to_string(static_cast<unsigned>(code))};
        break;
    }
    // The executor never resumes a halted machine's CPUs; their stacks are unmapped
    // without unwinding them.
    for (;;) {
        yield_to_executor();
    }
}

} // namespace hal_sim
