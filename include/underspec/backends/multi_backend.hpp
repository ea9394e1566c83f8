// Several backends behind one: the replicas of a call are cut into chunks that are dealt
// from one queue (deal_chunks) to one host thread per worker backend, so a faster device
// takes more chunks. Used for several GPUs; the dealing is tested with CPU workers. Since a
// replica's result depends only on its spec, results do not depend on the worker count.
#pragma once

#include <memory>
#include <vector>

#include "underspec/backends/backend.hpp"

namespace underspec {

// `chunks_per_worker`: how finely the replicas of one call are cut (more: better balance,
// less: bigger launches).
std::unique_ptr<Backend> make_multi_backend(std::vector<std::unique_ptr<Backend>> workers, int chunks_per_worker = 4);

}  // namespace underspec
