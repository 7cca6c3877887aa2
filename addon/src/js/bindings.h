// The functions index.d.ts declares, grouped by concern. Each entry point copies its arguments into plain
// structs (napi/args.h), then either answers at once (cgroupDetect) or queues a PromiseWorker.
#pragma once

#include <napi.h>

namespace berth {
namespace js {

// cgroupDetect, cgroupCreate, cgroupUpdate, cgroupRemove
void RegisterCgroup(Napi::Env env, Napi::Object exports);
// mountOverlay, unmount, mkWhiteout, mknod, setXattr
void RegisterFs(Napi::Env env, Napi::Object exports);
// kernelFeatures
void RegisterKernel(Napi::Env env, Napi::Object exports);
// netnsPrepareDir, netnsCreate, netnsDelete, sysctlWrite, linkAddBridge, linkAddVeth, linkSet, linkDelete,
// linkList, addrAdd, routeReplaceDefault
void RegisterNet(Napi::Env env, Napi::Object exports);
// flockTry
void RegisterLock(Napi::Env env, Napi::Object exports);
// rootOpen, inRoot* (files inside a container's root or a volume, fs/inroot.h), bindMountInRoot, unmountFd
void RegisterInRoot(Napi::Env env, Napi::Object exports);
// gzipMember (libdeflate, for docker push)
void RegisterDeflate(Napi::Env env, Napi::Object exports);
// UdpRelaySocket (the relay's UDP socket with the destination of each datagram)
void RegisterUdp(Napi::Env env, Napi::Object exports);
// releaseMemory, mallocTrim (memory back to the kernel at idle)
void RegisterMemory(Napi::Env env, Napi::Object exports);
// spawnProcess, spawnSupported, socketPair (posix_spawn and a pidfd watch: child processes at a cost
// independent of berthd's size)
void RegisterSpawn(Napi::Env env, Napi::Object exports);

}  // namespace js
}  // namespace berth
