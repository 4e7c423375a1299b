#include "kv_blocks.h"

#include <algorithm>

namespace ohai {

KvBlocks::KvBlocks(uint32_t n_cells, uint32_t block_size, uint32_t n_seq)
    : block_size_(std::max<uint32_t>(block_size, 1)),
      total_(n_cells / block_size_),
      free_(total_),
      held_(n_seq, 0) {}

uint32_t KvBlocks::blocks_for(uint64_t n_tokens) const {
    return static_cast<uint32_t>((n_tokens + block_size_ - 1) / block_size_);
}

bool KvBlocks::grow(int seq, uint64_t n_tokens) {
    uint32_t & held = held_[static_cast<size_t>(seq)];
    const uint32_t need = blocks_for(n_tokens);
    if (need <= held) return true;
    if (need - held > free_) return false;
    free_ -= need - held;
    held = need;
    return true;
}

void KvBlocks::shrink(int seq, uint64_t n_tokens) {
    uint32_t & held = held_[static_cast<size_t>(seq)];
    const uint32_t keep = std::min(held, blocks_for(n_tokens));
    free_ += held - keep;
    held = keep;
}

}  // namespace ohai
