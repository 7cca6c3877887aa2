// gzipMember: one block of a layer's tar as a complete gzip member, compressed with libdeflate on a libuv pool
// thread (daemon/distribution/pgzip.ts joins the members of a layer in order).
//
// Why libdeflate and not Node's zlib: deflate is the CPU of a push, and libdeflate compresses whole buffers
// two to three times faster than zlib at the same level with a ratio as good or better. It has no streaming
// and no preset dictionary, which is why each block is a member of its own: a gzip file of several members
// is one file to every reader (RFC 1952 section 2.2; Go's compress/gzip reads all members unless told not
// to, and so do zlib's gunzip, Node's createGunzip and the gzip tool).
//
// Output is deterministic: the same bytes and level give the same member (the header has no name and no
// time), so the same layer keeps its digest from push to push. Blocks that deflate cannot shrink (already
// compressed files, media, random data) cost as much CPU as text and save nothing; three 16 KiB samples are
// tried at level 1 first and, when none shrinks below 97 %, the block is stored (libdeflate's level 0, a
// copy in stored blocks). The decision depends only on the bytes, so it is deterministic too.
#include <libdeflate.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "js/bindings.h"
#include "napi/error.h"
#include "napi/worker.h"

namespace berth {
namespace js {

namespace {

constexpr size_t kSample = 16 * 1024;
// A sample that deflates to more than this many bytes counts as incompressible (97 %).
constexpr size_t kSampleShrunk = kSample * 97 / 100;
// gzip's member header: deflate, no flags, no mtime, no extra flags, OS unix (as zlib and Go write it).
constexpr uint8_t kHeader[10] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};
constexpr size_t kTrailer = 8;
constexpr int kMaxLevel = 12;

// A compressor per level and pool thread, kept for the thread's life: allocating one costs about as much as
// compressing a small block (its hash tables are hundreds of KiB, zeroed), and a compressor must not be
// shared between threads. libuv's pool threads live as long as the process.
struct Compressors {
  libdeflate_compressor* by_level[kMaxLevel + 1] = {};
  ~Compressors() {
    for (auto* c : by_level) libdeflate_free_compressor(c);
  }
  libdeflate_compressor* Get(int level) {
    if (by_level[level] == nullptr) by_level[level] = libdeflate_alloc_compressor(level);
    return by_level[level];
  }
};

thread_local Compressors compressors;

// Whether deflate would save anything on `data`, judged from up to three samples (start, middle, end),
// tried one after another: the first sample of a compressible block nearly always says so.
bool Compressible(const uint8_t* data, size_t len, libdeflate_compressor* fast) {
  if (len <= 3 * kSample) return true;
  uint8_t out[kSampleShrunk];
  for (size_t at : {size_t{0}, (len - kSample) / 2, len - kSample}) {
    // 0 means "did not fit in kSampleShrunk bytes".
    if (libdeflate_deflate_compress(fast, data + at, kSample, out, sizeof out) != 0) return true;
  }
  return false;
}

void PutLE32(uint8_t* p, uint32_t v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

class GzipMemberWorker : public napi::PromiseWorker {
 public:
  GzipMemberWorker(Napi::Env env, Napi::Buffer<uint8_t> input, int level)
      : PromiseWorker(env, "berth:gzipMember"),
        input_ref_(Napi::Persistent(input)),
        data_(input.Data()),
        len_(input.Length()),
        level_(level) {}

  ~GzipMemberWorker() override { free(out_); }

 protected:
  Status Run() override {
    libdeflate_compressor* c = compressors.Get(level_);
    libdeflate_compressor* fast = compressors.Get(1);
    libdeflate_compressor* store = compressors.Get(0);
    if (c == nullptr || fast == nullptr || store == nullptr) return Status::Sys(ENOMEM, "libdeflate_alloc_compressor");
    size_t bound = libdeflate_deflate_compress_bound(store, len_);
    if (libdeflate_deflate_compress_bound(c, len_) > bound) bound = libdeflate_deflate_compress_bound(c, len_);
    out_ = static_cast<uint8_t*>(malloc(sizeof kHeader + bound + kTrailer));
    if (out_ == nullptr) return Status::Sys(ENOMEM, "malloc");
    memcpy(out_, kHeader, sizeof kHeader);
    uint8_t* body = out_ + sizeof kHeader;
    size_t n = 0;
    if (level_ > 0 && Compressible(data_, len_, fast)) {
      // Room for less than the input only: output that would not be smaller is stored instead.
      n = libdeflate_deflate_compress(c, data_, len_, body, len_ > 0 ? len_ - 1 : 0);
    }
    if (n == 0) n = libdeflate_deflate_compress(store, data_, len_, body, bound);
    if (n == 0) return Status::Invalid(EIO, "libdeflate: stored output larger than its bound");
    PutLE32(body + n, libdeflate_crc32(0, data_, len_));
    PutLE32(body + n + 4, static_cast<uint32_t>(len_));  // ISIZE: the length modulo 2^32
    out_len_ = sizeof kHeader + n + kTrailer;
    // Large blocks of memory are their own mappings; giving back the unused tail keeps a compressed block's
    // buffer the size of what it holds while it waits to be sent.
    if (void* shrunk = realloc(out_, out_len_)) out_ = static_cast<uint8_t*>(shrunk);
    return Status::Ok();
  }

  Napi::Value Result(Napi::Env env) override {
    uint8_t* out = out_;
    out_ = nullptr;  // owned by the Buffer from here on
    input_ref_.Reset();
    return Napi::Buffer<uint8_t>::NewOrCopy(env, out, out_len_, [](Napi::Env, uint8_t* p) { free(p); });
  }

 private:
  // Keeps the input alive while a pool thread reads it (the caller must not change it meanwhile).
  Napi::Reference<Napi::Buffer<uint8_t>> input_ref_;
  const uint8_t* data_;
  size_t len_;
  int level_;
  uint8_t* out_ = nullptr;
  size_t out_len_ = 0;
};

// gzipMember(data: Buffer, level: number) → Promise<Buffer>: `data` as one gzip member, deflated at
// `level` (1–12; 0 stores), or stored when it looks incompressible.
Napi::Value GzipMember(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) {
    return napi::Rejected(env, napi::ArgumentError(env, "ERR_INVALID_ARG_TYPE", "data must be a Buffer"));
  }
  if (!info[1].IsNumber()) {
    return napi::Rejected(env, napi::ArgumentError(env, "ERR_INVALID_ARG_TYPE", "level must be a number"));
  }
  double level = info[1].As<Napi::Number>().DoubleValue();
  if (!(level >= 0 && level <= kMaxLevel) || level != static_cast<int>(level)) {
    return napi::Rejected(env, napi::ArgumentError(env, "ERR_INVALID_ARG_VALUE", "level must be an integer from 0 to 12"));
  }
  return napi::StartWorker<GzipMemberWorker>(env, info[0].As<Napi::Buffer<uint8_t>>(), static_cast<int>(level));
}

}  // namespace

void RegisterDeflate(Napi::Env env, Napi::Object exports) {
  exports.Set("gzipMember", Napi::Function::New(env, GzipMember, "gzipMember"));
}

}  // namespace js
}  // namespace berth
