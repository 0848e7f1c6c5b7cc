#pragma once

// Bare metal defines every HAL function out of line (cpu/*.cpp); nothing is inline here yet.
