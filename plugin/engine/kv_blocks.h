// Paged accounting of the KV cache: capacity is counted in fixed-size blocks of cells, held per
// sequence, the way PagedAttention / vLLM admit requests. llama.cpp's unified cache places the
// cells itself; the blocks decide who may use how much of it, so that admitting a request never
// starves the running ones and a full cache is met by preemption instead of failed decodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ohai {

class KvBlocks {
public:
    KvBlocks(uint32_t n_cells, uint32_t block_size, uint32_t n_seq);

    uint32_t block_size() const { return block_size_; }
    uint32_t total() const { return total_; }
    uint32_t free() const { return free_; }
    uint32_t held(int seq) const { return held_[static_cast<size_t>(seq)]; }
    // Blocks needed to hold `n_tokens` cells.
    uint32_t blocks_for(uint64_t n_tokens) const;

    // Makes `seq` hold enough blocks for `n_tokens` cells; false (and no change) when that needs
    // more free blocks than there are.
    bool grow(int seq, uint64_t n_tokens);
    // Sets what `seq` holds to exactly the blocks for `n_tokens` (never more than it holds now).
    void shrink(int seq, uint64_t n_tokens);
    void release(int seq) { shrink(seq, 0); }

private:
    uint32_t block_size_;
    uint32_t total_;
    uint32_t free_;
    std::vector<uint32_t> held_;
};

}  // namespace ohai
