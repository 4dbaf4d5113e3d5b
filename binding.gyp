{
  "variables": {
    # 1: AddressSanitizer + UndefinedBehaviorSanitizer build (npm run build:asan; run node
    # with LD_PRELOAD of libasan, see .ci/asan.sh).
    "tcpscope_sanitize%": 0
  },
  "targets": [
    {
      "target_name": "tcpscope",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/object.cc",
        "native/link.cc",
        "native/map.cc",
        "native/ringbuf.cc",
        "native/perfbuf.cc",
        "native/misc.cc",
        "native/pcapng.cc",
        "native/capture.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-fexceptions", "-std=c++17", "-O2", "-Wall", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(pkg-config --libs libbpf libelf zlib)"],
      "cflags": ["<!@(pkg-config --cflags libbpf)"],
      "conditions": [
        ["tcpscope_sanitize==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-O1", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
