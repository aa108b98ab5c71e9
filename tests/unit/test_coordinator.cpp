// The coordinator in-process on loopback (a free port chosen by the kernel): refusals with their
// gRPC codes, token data byte for byte, work-unit leases, the journal across restarts (torn tail,
// damage, another job's journal), liveness, rendezvous, and thousands of random messages.
#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "coordinator/coordinator_client.h"
#include "coordinator/coordinator_server.h"
#include "coordinator/worker_session.h"
#include "core/error.h"
#include "proto/protocol_version.h"
#include "small_corpus.h"
#include "temp_dir_test.h"

namespace kervan {
namespace {

namespace fs = std::filesystem;
namespace v1 = coordinator::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;

class Coordinator : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    write_small_corpus(dir / "corp", 300, {5000, 3001}, {1000});
  }

  std::unique_ptr<CoordinatorServer> start(JobState::Timing timing = {}, const std::string& job = "job1") {
    CoordinatorOptions o;
    o.corpora = {CorpusSpec::parse(path("corp"))};
    o.listen = "127.0.0.1:0";
    o.journal = path("journal");
    o.job_id = job;
    o.timing = timing;
    return std::make_unique<CoordinatorServer>(o, SharedSecret("secret"));
  }

  static CoordinatorClient client(const std::string& address, const std::string& token = "secret",
                                  const std::string& job = "job1") {
    return CoordinatorClient({address, job, 5.0}, SharedSecret(token));
  }

  static v1::WorkerIdentity identity(int rank, int world = 2) {
    v1::WorkerIdentity w;
    w.set_role(v1::WORKER_ROLE_TRAIN);
    w.set_host("host" + std::to_string(rank));
    w.set_pid(100 + rank);
    w.set_rank(rank);
    w.set_world_size(world);
    w.set_dp_rank(rank);
    w.set_dp_size(world);
    w.set_tp_size(1);
    return w;
  }

  static StatusCode code_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const CoordinatorRefusal& e) {
      return e.code();
    }
    return StatusCode::OK;
  }
};

// One raw unary call: the bytes go out as they are.
grpc::Status raw_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& body, std::chrono::milliseconds deadline = 5000ms) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::Slice slice(body.data(), body.size());
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/kervan.coordinator.v1.Coordinator/" + method, grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST_F(Coordinator, RefusesRequestsWithTheirCodesAndKeepsServing) {
  auto server = start();
  const std::string addr = server->address();
  EXPECT_EQ(code_of([&] { client(addr, "wrong").status(); }), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(code_of([&] { client(addr, "secret", "job2").status(); }), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code_of([&] { client(addr).heartbeat({}); }),
            StatusCode::NOT_FOUND);  // worker 0 never registered

  auto channel = coordinator_channel(addr);
  v1::StatusRequest req;
  EXPECT_EQ(raw_call(channel, "Status", req.SerializeAsString()).error_code(), StatusCode::UNAUTHENTICATED);
  *req.mutable_header() = client(addr).header();
  EXPECT_TRUE(raw_call(channel, "Status", req.SerializeAsString()).ok());
  req.mutable_header()->set_protocol_major(kProtocolMajor + 1);
  req.mutable_header()->set_protocol_minor(3);
  const grpc::Status version = raw_call(channel, "Status", req.SerializeAsString());
  EXPECT_EQ(version.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(version.error_message().find("protocol 2.3, this coordinator 1.0"), std::string::npos)
      << version.error_message();
  EXPECT_EQ(raw_call(channel, "Register", std::string("\xff\xff\xff\xff\x0f garbage", 13)).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(raw_call(channel, "Status", std::string(2 << 20, 'x')).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);

  v1::RegisterRequest bad;
  *bad.mutable_header() = client(addr).header();
  *bad.mutable_worker() = identity(5, 2);  // rank outside the world
  EXPECT_EQ(raw_call(channel, "Register", bad.SerializeAsString()).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client(addr).status().job_id(), "job1");
}

TEST_F(Coordinator, ServesEveryShardByteForByte) {
  auto server = start();
  auto c = client(server->address());
  const v1::ManifestResponse m = c.manifest();
  ASSERT_EQ(m.corpora_size(), 1);
  EXPECT_EQ(m.corpora(0).name(), "corp");
  ASSERT_EQ(m.corpora(0).splits_size(), 2);
  const v1::SplitInfo& train = m.corpora(0).splits(0);
  ASSERT_EQ(train.name(), "train");
  ASSERT_EQ(train.shards_size(), 2);
  EXPECT_EQ(train.shards(1).tokens(), 3001u);
  EXPECT_EQ(train.shards(1).token_bytes(), 2u);

  // Whole shards, and odd pieces, compared with the files.
  const TokenShard s0(path("corp/train-0.kvs")), s1(path("corp/train-1.kvs"));
  v1::FetchRequest req;
  req.set_corpus(0);
  req.set_split("train");
  const auto add = [&](uint32_t shard, uint64_t offset, uint64_t length) {
    v1::TokenRange* r = req.add_ranges();
    r->set_shard(shard);
    r->set_offset(offset);
    r->set_length(length);
  };
  add(0, 0, 10000);
  add(1, 3, 6002 - 3);
  add(1, 100, 1);
  std::vector<std::string> got(3);
  c.fetch(req, [&](const v1::TokenChunk& piece) { got[piece.range()] += piece.data(); });
  EXPECT_EQ(got[0], std::string(static_cast<const char*>(s0.token_data()), 10000));
  EXPECT_EQ(got[1], std::string(static_cast<const char*>(s1.token_data()) + 3, 5999));
  EXPECT_EQ(got[2], std::string(static_cast<const char*>(s1.token_data()) + 100, 1));

  req.clear_ranges();
  add(1, 6000, 3);  // past the end of the token section
  EXPECT_EQ(code_of([&] { c.fetch(req, [](const auto&) {}); }), StatusCode::INVALID_ARGUMENT);
  req.clear_ranges();
  for (uint32_t i = 0; i <= m.max_fetch_ranges(); ++i) add(0, 0, 1);
  EXPECT_EQ(code_of([&] { c.fetch(req, [](const auto&) {}); }), StatusCode::RESOURCE_EXHAUSTED);
  req.clear_ranges();
  req.set_split("test");
  EXPECT_EQ(code_of([&] { c.fetch(req, [](const auto&) {}); }), StatusCode::INVALID_ARGUMENT);
}

TEST_F(Coordinator, LeasesEachUnitOnceUntilItsLeaseRunsOut) {
  auto server = start({1000, 10000, 300});
  auto c = client(server->address());
  const uint64_t a = c.register_worker(identity(0), {}).worker_id(),
                 b = c.register_worker(identity(1), {}).worker_id();
  c.begin_prepare(a, 42, 3);
  c.begin_prepare(b, 42, 3);  // the same plan joins
  EXPECT_EQ(code_of([&] { c.begin_prepare(b, 43, 3); }), StatusCode::FAILED_PRECONDITION);

  const v1::Lease a0 = c.lease_unit(a).lease(), b1 = c.lease_unit(b).lease(), a2 = c.lease_unit(a).lease();
  EXPECT_EQ(a0.unit(), 0u);
  EXPECT_EQ(b1.unit(), 1u);
  EXPECT_EQ(a2.unit(), 2u);
  EXPECT_GT(c.lease_unit(b).retry_in_ms(), 0u);  // every unit is leased; the manifest step waits for them
  EXPECT_EQ(code_of([&] { c.renew_lease(b, a0.lease_id()); }), StatusCode::FAILED_PRECONDITION);  // not b's

  for (int i = 0; i < 4; ++i) {  // b keeps its lease alive; a does not
    std::this_thread::sleep_for(150ms);
    c.renew_lease(b, b1.lease_id());
  }
  const v1::Lease b0 = c.lease_unit(b).lease();  // a's unit 0 ran out: b redoes it
  EXPECT_EQ(b0.unit(), 0u);
  EXPECT_EQ(code_of([&] { c.complete_unit(a, a0.lease_id()); }), StatusCode::FAILED_PRECONDITION);
  c.complete_unit(a, a2.lease_id());  // ran out too, but nobody took it over: a's work counts
  c.complete_unit(b, b0.lease_id());
  c.complete_unit(b, b0.lease_id());  // a retried completion is fine
  c.complete_unit(b, b1.lease_id());
  const v1::Lease manifest = c.lease_unit(a).lease();
  EXPECT_EQ(manifest.unit(), 3u);  // the manifest step, once every unit is done
  const v1::StatusResponse s = c.status();
  EXPECT_EQ(s.prepare().units_done(), 3u);
  EXPECT_FALSE(s.prepare().manifest_written());
  c.complete_unit(a, manifest.lease_id());
  EXPECT_TRUE(c.lease_unit(b).all_done());
}

TEST_F(Coordinator, RestartFromTheJournalKeepsEveryChange) {
  uint64_t a = 0;
  v1::Lease held;
  {
    auto server = start({1000, 10000, 60000});
    auto c = client(server->address());
    a = c.register_worker(identity(0, 1), {}).worker_id();
    v1::DataPosition p;
    p.set_step(5);
    p.set_consumed_samples(80);
    p.set_checkpoint("ckpt/step-5");
    c.commit_position(a, p);
    c.begin_prepare(a, 7, 3);
    held = c.lease_unit(a).lease();
    c.complete_unit(a, c.lease_unit(a).lease().lease_id());
    EXPECT_TRUE(c.rendezvous_put("nccl", "id-1").first());
  }
  auto server = start({1000, 10000, 60000});
  auto c = client(server->address());
  const v1::StatusResponse s = c.status();
  EXPECT_EQ(s.committed().step(), 5);
  EXPECT_EQ(s.committed().consumed_samples(), 80);
  EXPECT_EQ(s.committed().checkpoint(), "ckpt/step-5");
  EXPECT_EQ(s.prepare().units_done(), 1u);
  EXPECT_EQ(s.prepare().units_leased(), 1u);
  ASSERT_EQ(s.workers_size(), 1);
  EXPECT_EQ(s.workers(0).state(), v1::WorkerStatus::STATE_UNKNOWN);  // not heard from since the restart
  EXPECT_EQ(c.register_worker(identity(0, 1), {}).committed().consumed_samples(), 80);
  EXPECT_EQ(c.lease_unit(a).lease().unit(), 2u);  // unit 0 is still a's; 1 is done
  c.complete_unit(a, held.lease_id());
  const v1::RendezvousPutResponse put = c.rendezvous_put("nccl", "id-2");
  EXPECT_FALSE(put.first());
  EXPECT_EQ(put.value(), "id-1");
}

TEST_F(Coordinator, JournalDropsATornTailAndRefusesDamageOrAnotherJob) {
  {
    auto server = start();
    auto c = client(server->address());
    c.register_worker(identity(0), {});
    c.register_worker(identity(1), {});
  }
  const uintmax_t intact = fs::file_size(path("journal"));
  {  // a crash in the middle of an append: part of a frame
    std::ofstream(path("journal"), std::ios::app | std::ios::binary) << std::string("\x30\0\0\0\x11\x22", 6);
  }
  EXPECT_EQ(start()->catalog().corpora().size(), 1u);
  EXPECT_EQ(fs::file_size(path("journal")), intact);  // cut back to the last whole record
  {  // zeros after the last record (a file extended before its data reached the disk)
    std::ofstream(path("journal"), std::ios::app | std::ios::binary) << std::string(40, '\0');
  }
  start();
  EXPECT_EQ(fs::file_size(path("journal")), intact);

  try {
    start({}, "job2");
    ADD_FAILURE() << "another job's journal was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to job 'job1'"), std::string::npos) << e.what();
  }

  {  // flip a byte inside the first record after the header: damage with records after it
    std::fstream f(path("journal"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(8);
    uint32_t header_length = 0;
    f.read(reinterpret_cast<char*>(&header_length), 4);
    const std::streamoff damaged = 8 + 12 + header_length + 14;
    f.seekp(damaged);
    f.put('\x7f');
  }
  try {
    start();
    ADD_FAILURE() << "a damaged journal was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("is damaged and"), std::string::npos) << e.what();
  }
}

TEST_F(Coordinator, ReportsWorkersThatStopHeartbeatingAsDead) {
  auto server = start({50, 200, 30000});
  auto c = client(server->address());
  const uint64_t quiet = c.register_worker(identity(0), {}).worker_id();
  const uint64_t busy = c.register_worker(identity(1), {}).worker_id();
  const uint64_t done = c.register_worker(identity(1), {}).worker_id();
  v1::HeartbeatRequest bye;
  bye.set_worker_id(done);
  bye.set_finished(true);
  c.heartbeat(bye);
  for (int i = 0; i < 8; ++i) {
    v1::HeartbeatRequest hb;
    hb.set_worker_id(busy);
    hb.set_step(i);
    hb.set_consumed_samples(16 * (i + 1));
    hb.set_tokens_per_s(1000);
    c.heartbeat(hb);
    std::this_thread::sleep_for(50ms);
  }
  const v1::StatusResponse s = c.status();
  std::map<uint64_t, v1::WorkerStatus::State> state;
  for (const auto& w : s.workers()) state[w.worker_id()] = w.state();
  EXPECT_EQ(state[quiet], v1::WorkerStatus::STATE_DEAD);
  EXPECT_EQ(state[busy], v1::WorkerStatus::STATE_ALIVE);
  EXPECT_EQ(state[done], v1::WorkerStatus::STATE_FINISHED);
  EXPECT_EQ(s.step(), 7);
  EXPECT_EQ(s.consumed_samples(), 128);
}

TEST_F(Coordinator, WorkerSessionReportsProgressAndHearsAStop) {
  auto server = start({50, 10000, 30000});
  auto c = std::make_shared<CoordinatorClient>(ClientOptions{server->address(), "job1", 5.0},
                                               SharedSecret("secret"));
  v1::RunShape run;
  run.set_seq_len(64);
  run.set_global_batch(8);
  run.set_total_steps(100);
  uint64_t id = 0;
  {
    WorkerSession session(c, identity(0, 1), run);
    id = session.worker_id();
    session.progress(5, 48, 1234);
    session.commit_position(4, 40, "ckpt/step-4");
    std::this_thread::sleep_for(200ms);
    v1::StatusResponse s = c->status();
    ASSERT_EQ(s.workers_size(), 1);
    EXPECT_EQ(s.workers(0).state(), v1::WorkerStatus::STATE_ALIVE);
    EXPECT_EQ(s.step(), 5);
    EXPECT_EQ(s.consumed_samples(), 48);
    EXPECT_DOUBLE_EQ(s.tokens_per_s(), 1234);
    EXPECT_NEAR(s.eta_s(), 94.0 * 8 * 64 / 1234, 1e-9);  // steps 6..99 at this rate
    EXPECT_EQ(s.committed().checkpoint(), "ckpt/step-4");
    EXPECT_FALSE(session.stop_requested());
    c->stop("drain the node");
    for (int i = 0; i < 100 && !session.stop_requested(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(session.stop_requested());
    EXPECT_EQ(session.stop_reason(), "drain the node");
  }
  const v1::StatusResponse s = c->status();
  EXPECT_EQ(s.workers(0).worker_id(), id);
  EXPECT_EQ(s.workers(0).state(), v1::WorkerStatus::STATE_FINISHED);
}

// A stop request is journaled: a restarted coordinator still asks the workers registered before
// it to stop. Workers that register afterwards (the job its scheduler restarted) are not asked.
TEST_F(Coordinator, AStopSurvivesARestartAndAsksOnlyTheWorkersRegisteredBeforeIt) {
  const auto stop_of = [](CoordinatorClient& c, uint64_t worker) {
    v1::HeartbeatRequest h;
    h.set_worker_id(worker);
    return c.heartbeat(h);
  };
  uint64_t before = 0;
  {
    auto server = start();
    auto c = client(server->address());
    before = c.register_worker(identity(0, 1), {}).worker_id();
    c.stop("node drain");
  }
  auto server = start();
  auto c = client(server->address());
  EXPECT_TRUE(c.status().stop_requested());
  const v1::HeartbeatResponse asked = stop_of(c, before);
  EXPECT_TRUE(asked.stop());
  EXPECT_EQ(asked.stop_reason(), "node drain");
  const uint64_t after = c.register_worker(identity(0, 1), {}).worker_id();
  EXPECT_FALSE(stop_of(c, after).stop());
  EXPECT_TRUE(stop_of(c, before).stop());  // the old job's worker is still asked
  EXPECT_FALSE(c.status().stop_requested());
  c.stop("again");  // a new request asks the new job
  EXPECT_TRUE(stop_of(c, after).stop());
  EXPECT_EQ(stop_of(c, after).stop_reason(), "again");
}

TEST_F(Coordinator, RendezvousGetWaitsForTheFirstPut) {
  auto server = start();
  auto c = client(server->address());
  auto waiting = std::async(std::launch::async, [&] { return c.rendezvous_get("config-hash", 10000); });
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(c.rendezvous_put("config-hash", "abc").first());
  const v1::RendezvousGetResponse got = waiting.get();
  EXPECT_TRUE(got.found());
  EXPECT_EQ(got.value(), "abc");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.rendezvous_get("absent", 100).found());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 90ms);
}

// Mutated valid requests and random bytes, to every unary method: each answered with one of the
// documented codes, and the server still answers a good request afterwards.
TEST_F(Coordinator, SurvivesThousandsOfRandomMessages) {
  auto server = start({1000, 10000, 30000});
  auto c = client(server->address());
  auto channel = coordinator_channel(server->address());
  const uint64_t w = c.register_worker(identity(0), {}).worker_id();

  std::vector<std::pair<std::string, std::string>> seeds;  // method, a valid request
  const auto add = [&](const std::string& method, google::protobuf::Message& m) {
    auto* h = m.GetReflection()->MutableMessage(&m, m.GetDescriptor()->FindFieldByName("header"));
    h->CopyFrom(c.header());
    seeds.emplace_back(method, m.SerializeAsString());
  };
  v1::RegisterRequest reg;
  *reg.mutable_worker() = identity(1);
  add("Register", reg);
  v1::ManifestRequest man;
  add("GetManifest", man);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  add("Heartbeat", hb);
  v1::CommitPositionRequest commit;
  commit.set_worker_id(w);
  commit.mutable_position()->set_step(3);
  add("CommitPosition", commit);
  v1::BeginPrepareRequest begin;
  begin.set_worker_id(w);
  begin.set_unit_count(4);
  add("BeginPrepare", begin);
  v1::LeaseRequest lease;
  lease.set_worker_id(w);
  add("LeaseUnit", lease);
  v1::RenewLeaseRequest renew;
  renew.set_worker_id(w);
  renew.set_lease_id(1);
  add("RenewLease", renew);
  v1::CompleteUnitRequest complete;
  complete.set_worker_id(w);
  complete.set_lease_id(1);
  add("CompleteUnit", complete);
  v1::RendezvousPutRequest put;
  put.set_key("k");
  put.set_value("v");
  add("RendezvousPut", put);
  v1::RendezvousGetRequest get;
  get.set_key("k");
  add("RendezvousGet", get);
  v1::StatusRequest status;
  add("Status", status);

  const std::set<StatusCode> documented = {StatusCode::OK,
                                           StatusCode::UNAUTHENTICATED,
                                           StatusCode::PERMISSION_DENIED,
                                           StatusCode::FAILED_PRECONDITION,
                                           StatusCode::INVALID_ARGUMENT,
                                           StatusCode::RESOURCE_EXHAUSTED,
                                           StatusCode::NOT_FOUND};
  std::mt19937_64 rng(12345);
  std::map<StatusCode, int> seen;
  for (int i = 0; i < 3000; ++i) {
    const auto& [method, valid] = seeds[rng() % seeds.size()];
    std::string body = valid;
    switch (rng() % 4) {
      case 0:  // random bytes
        body.resize(rng() % 200);
        for (char& ch : body) ch = static_cast<char>(rng());
        break;
      case 1:  // flipped bytes
        for (int k = 0; k < 3 && !body.empty(); ++k)
          body[rng() % body.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 2:  // cut short
        body.resize(rng() % (body.size() + 1));
        break;
      case 3:  // random bytes appended (unknown or repeated fields)
        for (int k = rng() % 40; k > 0; --k) body += static_cast<char>(rng());
        break;
    }
    const grpc::Status s = raw_call(channel, method, body, 2000ms);
    // A mutated RendezvousGet may wait for a key that never comes; that one may run into the deadline.
    if (method == "RendezvousGet" && s.error_code() == StatusCode::DEADLINE_EXCEEDED) continue;
    ASSERT_TRUE(documented.contains(s.error_code()))
        << method << ": " << status_code_name(s.error_code()) << " " << s.error_message();
    seen[s.error_code()]++;
  }
  EXPECT_GT(seen[StatusCode::OK], 0);
  EXPECT_GT(seen[StatusCode::INVALID_ARGUMENT], 0);
  EXPECT_GT(seen[StatusCode::UNAUTHENTICATED], 0);
  EXPECT_EQ(c.status().job_id(), "job1");
  EXPECT_EQ(c.manifest().corpora(0).name(), "corp");
}

TEST_F(Coordinator, RefusesACorpusThatDoesNotMatchItsManifest) {
  {  // one byte of the second train shard's tokens changes
    std::fstream f(path("corp/train-1.kvs"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 10);
    f.put('\x01');
  }
  try {
    start();
    ADD_FAILURE() << "a corrupt shard was served";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train-1.kvs: checksum mismatch"), std::string::npos) << e.what();
  }
}

TEST_F(Coordinator, RefusesAPortInUse) {
  auto first = start();
  CoordinatorOptions o;
  o.corpora = {CorpusSpec::parse(path("corp"))};
  o.listen = first->address();
  o.journal = path("journal2");
  try {
    CoordinatorServer second(o, SharedSecret("secret"));
    ADD_FAILURE() << "two coordinators on one port";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + first->address()), std::string::npos)
        << e.what();
  }
}

TEST(SharedSecret, RefusesATokenFileOthersCanRead) {
  const std::string file =
      (fs::temp_directory_path() / ("kervan_token_" + std::to_string(::getpid()))).string();
  std::ofstream(file) << "  s3cret \n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  try {
    SharedSecret::from_file(file);
    ADD_FAILURE() << "a group-readable token file was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("mode 0640"), std::string::npos) << e.what();
  }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  const SharedSecret s = SharedSecret::from_file(file);
  EXPECT_EQ(s.token(), "s3cret");
  EXPECT_TRUE(s.matches("s3cret"));
  EXPECT_FALSE(s.matches("s3cre"));
  EXPECT_FALSE(s.matches(""));
  fs::remove(file);
}

}  // namespace
}  // namespace kervan
