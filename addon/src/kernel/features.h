// The newer kernel interfaces berth uses, probed once in berthd's own process (and so under whatever
// seccomp filter berthd runs in): each is there or not, with the kernel release that brought it.
#pragma once

#include <string>
#include <vector>

namespace berth {
namespace kernel {

struct Feature {
  std::string name;    // "close_range(CLOSE_RANGE_CLOEXEC)"
  std::string since;   // "5.11"
  bool available = false;
  std::string detail;  // why not (the errno text or the kernel's message)
};

// Tries each interface with arguments that change nothing. scratch is a directory path that may be
// created and is removed again (for the overlay probe).
std::vector<Feature> Probe(const std::string& scratch);

}  // namespace kernel
}  // namespace berth
