#pragma once
#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>

#include "coordinator/shared_secret.h"
#include "core/error.h"
#include "proto/coordinator.grpc.pb.h"

namespace kervan {

// The coordinator refused a request (a gRPC status other than "unavailable"): the code says why
// (proto/coordinator.proto lists them), the message names the address and the method.
class CoordinatorRefusal : public UserError {
 public:
  CoordinatorRefusal(grpc::StatusCode code, const std::string& message) : UserError(message), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

struct ClientOptions {
  std::string address;  // HOST:PORT
  std::string job_id = "default";
  // How long a call keeps retrying (with back-off) while the coordinator is unreachable, before
  // failing with an error naming the address.
  double retry_timeout_s = 60;
  std::string timeout_setting = "--timeout-s";  // what sets retry_timeout_s, for the error message
};

// A worker's connection to the coordinator: typed calls that fill in the request header (protocol
// version, job id, token), retry while the coordinator is unreachable (it may be restarting from
// its journal) and then fail with an EnvironmentError naming it, and turn refusals into
// CoordinatorRefusal. Thread-safe. With KERVAN_TLS_CA set to
// a PEM file, the connection uses TLS and verifies the server against that CA
// (KERVAN_TLS_CERT / KERVAN_TLS_KEY add a client certificate).
class CoordinatorClient {
 public:
  CoordinatorClient(ClientOptions options, SharedSecret secret);

  const std::string& address() const { return options_.address; }

  coordinator::v1::RegisterResponse register_worker(const coordinator::v1::WorkerIdentity& worker,
                                                    const coordinator::v1::RunShape& run);
  coordinator::v1::ManifestResponse manifest();
  // Streams the ranges' token data into on_piece (each piece's checksum already verified). A
  // retried request delivers pieces again, so on_piece must be idempotent (write to the same place).
  // Pieces live in a message reused per thread: on_piece must not fetch again on its thread.
  void fetch(coordinator::v1::FetchRequest request,
             const std::function<void(const coordinator::v1::TokenChunk&)>& on_piece);
  coordinator::v1::HeartbeatResponse heartbeat(coordinator::v1::HeartbeatRequest request);
  void commit_position(uint64_t worker_id, const coordinator::v1::DataPosition& position);
  void stop(const std::string& reason);
  void begin_prepare(uint64_t worker_id, uint64_t plan_fingerprint, uint32_t unit_count);
  coordinator::v1::LeaseResponse lease_unit(uint64_t worker_id);
  coordinator::v1::RenewLeaseResponse renew_lease(uint64_t worker_id, uint64_t lease_id);
  void complete_unit(uint64_t worker_id, uint64_t lease_id);
  coordinator::v1::RendezvousPutResponse rendezvous_put(const std::string& key, const std::string& value);
  coordinator::v1::RendezvousGetResponse rendezvous_get(const std::string& key, uint32_t wait_ms);
  coordinator::v1::StatusResponse status();

  // The header every request carries.
  coordinator::v1::RequestHeader header() const;

 private:
  // Runs `attempt` until it returns a status other than UNAVAILABLE / DEADLINE_EXCEEDED or the
  // retry time runs out; a refusal becomes CoordinatorRefusal (exit code 2), running out an
  // EnvironmentError naming the address (exit code 4).
  void call(const char* method, const std::function<grpc::Status(grpc::ClientContext&)>& attempt);

  ClientOptions options_;
  SharedSecret secret_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<coordinator::v1::Coordinator::Stub> stub_;
};

// The channel a client (or a benchmark's simulated workers) uses for `address`, TLS per the
// environment as described above; `args` adds channel arguments of the caller's.
std::shared_ptr<grpc::Channel> coordinator_channel(const std::string& address,
                                                   grpc::ChannelArguments args = {});

// "UNAUTHENTICATED" for the code.
std::string status_code_name(grpc::StatusCode code);

}  // namespace kervan
