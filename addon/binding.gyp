{
  "targets": [
    {
      "target_name": "bpf_loader",
      "sources": [
        "src/addon.cc",
        "src/error.cc",
        "src/netns.cc",
        "src/object.cc",
        "src/program.cc",
        "src/map.cc",
        "src/link.cc",
        "src/ring_buffer.cc",
        "src/probe.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "<!@(pkg-config --cflags libbpf libelf zlib)"],
      "libraries": ["<!@(pkg-config --libs libbpf libelf zlib)"]
    }
  ]
}
