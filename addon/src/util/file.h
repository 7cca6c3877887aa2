// Whole-file reads and writes of small kernel interface files (cgroup control files, /sys parameters).
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace berth {

// Reads the whole file into *out.
Status ReadFile(const std::string& path, std::string* out);

// Writes value with one write(2), as kernel interface files expect: each write is one command, and a
// control file rejects a value split across writes. With create, a missing file is created and an existing
// one truncated (used only for fake trees of plain files; see cgroup/hierarchy.h).
Status WriteFile(const std::string& path, const std::string& value, bool create);

// True when path exists (lstat succeeds).
bool PathExists(const std::string& path);

// Names of the entries of a directory that are themselves directories (no recursion, no symlinks).
Status ListSubdirs(const std::string& dir, std::vector<std::string>* names);

// Strips leading and trailing whitespace (control files end in "\n").
std::string Trim(const std::string& s);

// Splits on any run of the characters in seps, dropping empty pieces.
std::vector<std::string> SplitAny(const std::string& s, const char* seps);

}  // namespace berth
