// releaseMemory: hands memory berthd no longer uses back to the kernel, for an idle daemon after a burst
// of work (daemon/runtime/memory.ts decides when). Neither half happens by itself at idle: V8 shrinks its
// young generation and frees empty old-space pages only in a collection made to reduce memory (its own
// memory reducer runs one about a minute after the last full collection, if ever), and glibc's free()
// gives back only the top of the main heap, keeping freed chunks below it resident.
#include <malloc.h>
#include <v8.h>

#include "js/bindings.h"

namespace berth {
namespace js {

namespace {

// kModerate: V8 starts incremental marking for a collection that reduces memory, finished by tasks on the
// event loop over the next moments (about one full collection's work, tens of milliseconds with 1,000
// containers). kCritical would run up to seven full collections at once, synchronously. The malloc_trim
// here releases what is free already; mallocTrim, called after the collection, releases what it freed.
Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// malloc_trim alone, once the collection is done: it and V8's sweeper thread free pages and Buffers'
// backing stores that malloc keeps until trimmed.
Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseMemory", Napi::Function::New(env, ReleaseMemory, "releaseMemory"));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim, "mallocTrim"));
}

}  // namespace js
}  // namespace berth
