# Sourced by the QEMU tests that compare a scenario's processes on both machines
# (workload.sh, processes.sh). process_lines FILE prints the lines of a COM1 log that must be
# the same on QEMU and in the simulator -- how each process ended, the faults, the system
# calls, the IPC calls, the frames in use before and after, the objects left -- sorted, with
# what depends on timing taken out: a fault's instruction pointer (the simulator has none), the
# faulting thread's number (threads that processes start are numbered as they come), the direct
# switches.
process_lines() {
    tr -d '\r' <"$1" |
        grep -E "^user: (killed |'|[0-9]+ processes|[0-9]+ system calls|[0-9]+ IPC calls)" |
        sed -E -e 's/, ip 0x[0-9a-f]+$//' -e 's/, thread [0-9]+( #[0-9]+)?\)/\1)/' \
            -e 's/ IPC calls, [0-9]+ direct switches,/ IPC calls,/' |
        sort
}
