// @tune hr_group_norm_forward<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
// @tune hr_group_norm_backward_dx<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
// @tune hr_gated_rms_norm_forward<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
// @tune hr_gated_rms_norm_backward_dx<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
