// RoPE inverse frequencies computed on the host, as transformers' ROPE_INIT_FUNCTIONS do (in
// fp32 where they compute in fp32), for Backend::rope's [1, head_dim / 2] table.
#pragma once

#include <cstdint>
#include <vector>

#include "model/decoder_config.h"

namespace radix {

// The table for a batch whose largest position is max_position (only the dynamic type reads it:
// transformers grows the NTK base once a sequence exceeds original_max_position_embeddings;
// radix recomputes it for each batch from that batch's longest sequence, which transformers'
// cache would also give for a fresh model).
std::vector<float> rope_inv_freq(const DecoderConfig& config, int32_t max_position = 0);

}  // namespace radix
