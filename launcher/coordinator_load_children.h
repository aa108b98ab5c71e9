#pragma once
#include "coordinator/shared_secret.h"
#include "launcher/coordinator_load.h"

namespace kervan {

// The simulated workers of `kervan bench coordinator` split over child processes of this binary,
// each with a gRPC client of its own, as real workers are separate processes. One process running
// every worker from several threads shares one gRPC event engine among them: its epoll set is
// polled by whichever thread is free, which then wakes the thread whose queue the completion
// belongs to (measured on the 2-core bench machine: one process with two threads cost 15% more CPU
// per RPC than two processes with one each, and the coordinator under it 13% more).
//
// A child (`kervan bench coordinator --only rpc --coordinator ADDR --load-child FIRST ...`)
// registers its workers, writes "ready" on its stdout, waits for "start NS" on its stdin (the
// steady clock's time, shared by every process on the machine), runs the load and writes its
// LoadSamples as one JSON line.

// Runs `options`' load (options.workers in all) in `processes` children of this binary, started
// together; the coordinator's token goes to them in their environment.
LoadResult run_coordinator_load_in_children(const LoadOptions& options, int processes,
                                            const SharedSecret& secret);

// A child's side: runs `options` (its share of the workers) under the protocol above.
void run_coordinator_load_child(LoadOptions options, const SharedSecret& secret);

}  // namespace kervan
