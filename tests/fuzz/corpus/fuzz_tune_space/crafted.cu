// @tune k1<T, N, CHUNK>: CHUNK = 8 16 32 64; default 16; require CHUNK <= 2 * N && (ELEM + 8) * CHUNK < SHARED || !(N % 3 == 1) && -N != N / 2
// @tune k2<T, BLOCK>: BLOCK = 1 2 3; default 2
// @tune k3<T>: T = 4; default 5
