// berth.node: the host-side half of berth's native seam. Only daemon/runtime/native.ts loads it; its exact
// surface is ../index.d.ts. Every export that touches the host runs on the libuv pool and returns a
// Promise; arguments are copied into plain structs before the work is queued. The addon keeps no state
// between calls, so there is no per-environment data to set up or clean up, and it is safe in workers.
#include <napi.h>

#include "js/bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  berth::js::RegisterFs(env, exports);
  berth::js::RegisterCgroup(env, exports);
  berth::js::RegisterNet(env, exports);
  berth::js::RegisterKernel(env, exports);
  berth::js::RegisterLock(env, exports);
  berth::js::RegisterInRoot(env, exports);
  berth::js::RegisterDeflate(env, exports);
  berth::js::RegisterUdp(env, exports);
  berth::js::RegisterMemory(env, exports);
  berth::js::RegisterSpawn(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(berth, Init)
