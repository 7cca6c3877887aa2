// Linux capabilities for the container's init, with raw capset/prctl calls (the shim links statically
// and the Makefile does not link libcap, so the names are mapped here).
#pragma once

#include <string>

#include "spec.h"

// The capability number for a name such as "CAP_NET_ADMIN" (the "CAP_" prefix is optional, case is
// ignored); -1 when the name is unknown.
int cap_from_name(const std::string& name);

// Drops every capability that is not in s.cap_bounding from the bounding set. Needs CAP_SETPCAP, so it
// runs before the uid change. Capabilities this kernel does not know are skipped.
bool cap_apply_bounding(const Spec& s);

// Sets the effective, permitted and inheritable sets with capset(2), then raises the ambient set. Runs
// after the uid change (which was made with PR_SET_KEEPCAPS so the permitted set survived it).
bool cap_apply_sets(const Spec& s);
