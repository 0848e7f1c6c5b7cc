// `duet run --verify-determinism`: the same scenario and seed, run again in the same process,
// must give the same run. A difference means something leaked in from the host (addresses,
// wall-clock time, unseeded randomness) or survived from the first machine.

#include "run.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace duet {

int verify_replay(const std::string& path, const RunOptions& options, const Outcome& first,
                  std::FILE* out, std::FILE* err) {
    RunOptions again = options;
    again.quiet = true;
    again.com1_path.clear();
    again.json_path.clear();
    again.verify_determinism = false;
    Outcome second = execute(path, again, nullptr);
    std::string digest = first.report.text("digest");
    if (second.status == kExitUsage) {
        fmt::print(err, "determinism: the second run did not start: {}\n", second.error);
        return kExitFailed;
    }
    std::vector<std::string> differ;
    if (second.report.text("digest") != digest) {
        differ.push_back(fmt::format("digest {} then {}", digest, second.report.text("digest")));
    }
    if (second.report.to_json() != first.report.to_json()) {
        differ.push_back("the reports");
    }
    if (second.trace != first.trace) {
        differ.push_back("the traces");
    }
    if (!differ.empty()) {
        fmt::print(err, "determinism: {} (seed {}): two runs differ: {}\n", path, first.seed,
                   fmt::join(differ, "; "));
        return kExitFailed;
    }
    fmt::print(out, "determinism: two runs agree (seed {}, digest {}{})\n", first.seed, digest,
               first.trace.empty() ? "" : ", same trace");
    return kExitOk;
}

} // namespace duet
