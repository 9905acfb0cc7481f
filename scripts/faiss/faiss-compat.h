// Force-included (g++ -include) when scripts/build-faiss.sh compiles
// faiss-node's src/faiss.cc against a system FAISS. faiss-node 0.5.1 is
// written for FAISS 1.7.4, which has the namespace-level `faiss::idx_t`;
// FAISS 1.7.3 (Debian 12's libfaiss-dev) only has `faiss::Index::idx_t`.
// Both are int64_t, and C++ allows an alias to be redeclared to the same type,
// so this line is harmless on 1.7.4 and later.
#pragma once
#include <cstdint>
namespace faiss {
using idx_t = int64_t;
}
