// @tune hr_cross_entropy_rows<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256; require (ELEM + 8) * BLOCK <= SHARED
template <typename T, int BLOCK>
