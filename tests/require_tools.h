// Tests that need a tool from scripts/install-deps.sh --test (torch,
// prometheus, promtool) skip without it on a developer's machine, but fail
// under the README's test command, which sets BERTH_REQUIRE_TOOLS=1: a
// missing install step must not pass for a green run.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#define BERTH_SKIP_UNLESS_REQUIRED(why)                                               \
  do {                                                                                \
    const char* berth_required_ = std::getenv("BERTH_REQUIRE_TOOLS");                 \
    if (berth_required_ && *berth_required_ && std::string(berth_required_) != "0") { \
      FAIL() << why << " (BERTH_REQUIRE_TOOLS is set)";                               \
    }                                                                                 \
    GTEST_SKIP() << why;                                                              \
  } while (0)
