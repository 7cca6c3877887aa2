# Builds build/Release/berth.node (make addon). node-addon-api is used with C++ exceptions off
# (NAPI_DISABLE_CPP_EXCEPTIONS): errors travel as berth::Status values and become JS errors in one place,
# src/napi/error.cc. Symbols are hidden except the module's registration.
{
  "targets": [
    {
      "target_name": "berth",
      "sources": [
        "src/addon.cc",
        "src/napi/args.cc",
        "src/napi/error.cc",
        "src/util/file.cc",
        "src/cgroup/detect.cc",
        "src/cgroup/devices_bpf.cc",
        "src/cgroup/hierarchy.cc",
        "src/cgroup/manager.cc",
        "src/cgroup/v1.cc",
        "src/cgroup/v2.cc",
        "src/fs/inroot.cc",
        "src/fs/nodes.cc",
        "src/fs/overlay.cc",
        "src/fs/idmap.cc",
        "src/net/netlink.cc",
        "src/net/link.cc",
        "src/net/netns.cc",
        "src/js/cgroup.cc",
        "src/js/fs.cc",
        "src/js/inroot.cc",
        "src/js/net.cc",
        "src/js/kernel.cc",
        "src/kernel/features.cc",
        "src/js/lock.cc",
        "src/js/deflate.cc",
        "src/js/udp.cc",
        "src/js/memory.cc",
        "src/js/spawn.cc"
      ],
      "include_dirs": [
        "src",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      # libdeflate (Debian libdeflate-dev): the deflate of docker push, src/js/deflate.cc.
      "libraries": ["-ldeflate"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fno-exceptions"]
    }
  ]
}
