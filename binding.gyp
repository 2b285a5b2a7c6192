{
  "targets": [
    {
      "target_name": "regions_native",
      "sources": [
        "native/addon.c",
        "native/args.c",
        "native/crc32c.c",
        "native/errors.c",
        "native/flush.c",
        "native/futex.c",
        "native/lock.c",
        "native/map.c",
        "native/peer.c",
        "native/shared_buffer.cc",
        "native/shootdown.c",
        "native/socket.c",
        "native/track.c",
        "native/uffd.c"
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
