// hgpipe testbench helpers: streams fed from and dumped to text files of integers,
// one beat a line, element t * lanes + e of a beat in column t * lanes + e.
#ifndef HGPIPE_TB_H
#define HGPIPE_TB_H

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "hgpipe.h"

namespace hgpipe_tb {

inline std::vector<long long> load(const std::string &path) {
    std::ifstream in(path.c_str());
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::vector<long long> v;
    long long x;
    while (in >> x) v.push_back(x);
    return v;
}

// Write `beats` beats of `v` from position `k` on; false when `v` runs out.
template <typename T, int N>
bool feed(hls::stream<hgpipe::Beat<T, N> > &s, const std::vector<long long> &v, size_t &k,
          int beats) {
    for (int b = 0; b < beats; b++) {
        if (k + N > v.size()) return false;
        hgpipe::Beat<T, N> x;
        for (int e = 0; e < N; e++) x.d[e] = v[k++];
        s.write(x);
    }
    return true;
}

// Read `beats` beats into `out`; false if the stream holds fewer.
template <typename T, int N>
bool drain(hls::stream<hgpipe::Beat<T, N> > &s, std::vector<long long> &out, int beats) {
    for (int b = 0; b < beats; b++) {
        if (s.empty()) return false;
        const hgpipe::Beat<T, N> y = s.read();
        for (int e = 0; e < N; e++) out.push_back(y.d[e].to_int64());
    }
    return true;
}

inline void save(const std::string &path, const std::vector<long long> &v, int n) {
    FILE *f = std::fopen(path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(2);
    }
    for (size_t i = 0; i < v.size(); i++)
        std::fprintf(f, "%lld%c", v[i], (i + 1) % n ? ' ' : '\n');
    std::fclose(f);
}

}  // namespace hgpipe_tb

#endif
