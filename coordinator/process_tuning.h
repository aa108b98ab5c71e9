#pragma once

namespace kervan {

// Process-wide settings that every process talking gRPC (the coordinator, its workers) gets
// once, before its first channel or server, measured with `kervan bench coordinator` on the
// 2-core bench machine (bench/RESULTS.md):
//
// - gRPC 1.51's event engine polls its sockets with poll() unless GRPC_POLL_STRATEGY says
//   otherwise, and keeps them in arrays it searches linearly: with 1,000 worker connections that
//   search was 20% of the coordinator's cycles. epoll1 doubled the RPCs/s it answers. (A value
//   the user set is kept.)
// - Streaming token data makes gRPC allocate and free megabytes of buffers per second. glibc's
//   malloc then gives the top of its heap back to the kernel after each burst and faults it in
//   again for the next (page faults in recvmsg's copy led `perf`), 3-4x the CPU per byte
//   streamed. Keeping up to 256 MiB of freed heap for reuse (M_TRIM_THRESHOLD) took a loopback
//   stream from about 100 MB/s to 600-1100 MB/s.
// - Debian's Abseil keeps a lock-order graph for deadlock detection on every absl::Mutex that
//   gRPC takes (GraphCycles::GetId alone was 7% of a loaded coordinator's cycles). Detection is
//   a debugging aid for Abseil's own users; it is turned off.
//
// Idempotent; called by CoordinatorServer, CoordinatorClient and TokenCache.
void tune_process_for_grpc();

}  // namespace kervan
