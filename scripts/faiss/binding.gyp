# Copied by scripts/build-faiss.sh into a scratch directory next to a copy of
# faiss-node's src/faiss.cc and node-addon-api's headers; the variables are
# passed on the node-gyp command line.
{
  "variables": {
    "faiss_include%": "/usr/include",
    "faiss_lib%": "/usr/lib/x86_64-linux-gnu/libfaiss.a",
    "blas_libs%": "-lblas -llapack"
  },
  "targets": [
    {
      "target_name": "faiss-node",
      "sources": ["src/faiss.cc"],
      "include_dirs": ["node-addon-api", "<(faiss_include)"],
      "defines": ["NAPI_VERSION=6", "NAPI_CPP_EXCEPTIONS"],
      # node-gyp's defaults are -fno-rtti -fno-exceptions: FAISS throws
      # FaissException and faiss-node's read/write paths use dynamic_cast,
      # which segfaults in __dynamic_cast without RTTI.
      "cflags!": ["-fno-rtti", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti", "-fno-exceptions"],
      "cflags_cc": [
        "-frtti",
        "-fexceptions",
        "-fopenmp",
        "-O3",
        "-include",
        "<(module_root_dir)/faiss-compat.h"
      ],
      "ldflags": ["-fopenmp"],
      "libraries": ["<(faiss_lib)", "<@(blas_libs)", "-lgomp"]
    }
  ]
}
