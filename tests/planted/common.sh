# Sourced by tests/planted/run.sh and fuzz.sh: which scenarios each planted bug's code runs in,
# and the scratch copy of the tree they patch and build. The caller sets `root` (the
# repository), `tree` (the scratch copy), `out` (where build logs go) and `jobs`.

# Which scenarios each bug's code runs in. A bug not listed runs the scheduler set.
sched_set="default sched-balance sched-mutex sched-producer-consumer sched-sleepers sched-yield sched-crowded"
mem_set="memory-heap memory-exhaustion memory-faults memory-fragmentation"
scenarios_for() {
    case $1 in
    idle-lost-wakeup) echo "sched-fairness sched-balance sched-tickless-idle sched-crowded" ;;
    semaphore-peek-unlocked) echo "sched-producer-consumer sched-crowded" ;;
    frame-drain-ignores-owner | heap-irq-on-early) echo "$mem_set" ;;
    exit-stats-shared) echo "sched-forkbomb memory-heap default sched-fairness" ;;
    stack-flush-skipped | spawn-first-frame-unflushed) echo "sched-stack-reuse sched-forkbomb default" ;;
    baseline) echo "$sched_set sched-fairness sched-tickless-idle sched-forkbomb sched-stack-reuse $mem_set" ;;
    *) echo "$sched_set" ;;
    esac
}

# Copies the tracked files, as they are now, into $tree: a repository of its own, so that
# git apply's paths are the tree's wherever it is.
copy_tree() {
    git -C "$root" ls-files -z | (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$tree"
    git init -q "$tree"
}

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

# configure DIR EXTRA...: a simulator-only build of the copy in $tree/DIR.
configure() {
    local dir=$1
    shift
    cmake -S "$tree" -B "$tree/$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDUET_KERNEL=OFF -DDUET_BENCH=OFF -DDUET_FUZZ=OFF "${launcher[@]}" "$@" >/dev/null
}

# build DIR TARGET: the log in $out/build-DIR.log, its end on stderr if it fails.
build() {
    cmake --build "$tree/$1" --target "$2" -j "$jobs" >"$out/build-$1.log" 2>&1 || {
        tail -30 "$out/build-$1.log" >&2
        return 1
    }
}
