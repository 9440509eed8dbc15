// @tune hr_wkv6_backward<T, N, CHUNK>: CHUNK = 8 16 32 64; default 16
template <typename T, int N, int CHUNK>
