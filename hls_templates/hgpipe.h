// hgpipe HLS support: the beat a stream carries and the integer helpers every kernel uses.
//
// A stream carries beats of `tp` token slots x `lanes` elements, token groups outermost
// and channel chunks inside; element t * lanes + e of a beat is token t of the group,
// channel e of the chunk (hgpipe.graph.contract). Every kernel processes one image per
// call, so the DATAFLOW top overlaps consecutive images.
#ifndef HGPIPE_H
#define HGPIPE_H

#include <ap_int.h>
#include <hls_stream.h>

// HLS directives, for Vitis HLS only (it defines __SYNTHESIS__): C simulation with any
// compiler stays free of unknown-pragma warnings.
// Loop labels likewise: they name the loops in Vitis HLS's reports. Constant arrays are
// ap_int for Vitis HLS and C integers for C simulation (g++ compiles millions of ap_int
// initialisers slowly); kernels read them through the ap_int type either way.
#ifdef __SYNTHESIS__
#define HGPIPE_PRAGMA(x) _Pragma(#x)
#define HGPIPE_LOOP(name) name:
#define HGPIPE_ROM(ap, native) ap
#else
#define HGPIPE_PRAGMA(x)
#define HGPIPE_LOOP(name)
#define HGPIPE_ROM(ap, native) native
#endif

namespace hgpipe {

template <typename T, int N>
struct Beat {
    T d[N];
};

// Saturate `x` to [lo, hi] and narrow it to R.
template <typename R, typename T>
inline R clamp(const T &x, long long lo, long long hi) {
HGPIPE_PRAGMA(HLS INLINE)
    if (x < lo) return R(lo);
    if (x > hi) return R(hi);
    return R(x);
}

}  // namespace hgpipe

#endif
