#pragma once

// The user programs linked into the simulator (user/CMakeLists.txt builds each program's
// source for the host, its main() renamed): hal/sim/user.cpp runs the one whose name is the
// process's.

namespace duet_user {

using HostMain = int (*)();

// The host build of the program called `name` ("hello": the initrd path's last part), or null.
HostMain find_host_program(const char* name);

} // namespace duet_user
