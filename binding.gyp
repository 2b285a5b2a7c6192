{
  "variables": {
    # The arch folder (native/arch/<name>): x86_64 on x64, generic (no cache-line flush, no
    # non-temporal page copy, no fault write bit) elsewhere. `node-gyp configure -- -Dregions_arch=generic`
    # builds the generic one on x64 too, to test it.
    "conditions": [
      ["target_arch=='x64'", {"regions_arch%": "x86_64"}, {"regions_arch%": "generic"}]
    ]
  },
  "targets": [
    {
      "target_name": "regions_native",
      "sources": [
        "native/addon.c",
        "native/args.c",
        "native/commit.c",
        "native/errors.c",
        "native/fault.c",
        "native/flush.c",
        "native/futex.c",
        "native/layout.c",
        "native/liveness.c",
        "native/lock.c",
        "native/map.c",
        "native/memory.c",
        "native/pagemap.c",
        "native/peer.c",
        "native/registry.c",
        "native/segv.c",
        "native/shared_buffer.cc",
        "native/shootdown.c",
        "native/sigsafe.c",
        "native/socket.c",
        "native/serving.c",
        "native/track.c",
        "native/track_napi.c",
        "native/uffd.c",
        "native/arch/<(regions_arch)/cache.c",
        "native/arch/<(regions_arch)/trap.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11"],
      "cflags": ["-Wall", "-Wextra"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        },
        "Debug": {
          "cflags!": ["-O0"],
          "cflags": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address"]
        }
      }
    }
  ]
}
