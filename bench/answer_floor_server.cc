// The floor under imgseld's Select figure: a server that answers Select with
// an answer read from a file, without selecting anything.
//
//   answer_floor_server SOCKET ANSWER_FILE
//
// It is built like imgseld's Selector API server: the same gRPC library,
// Select as a raw callback method whose request is parsed into
// imgsel.v1.SelectRequest, gRPC's default health service for the empty RPC,
// a Unix socket. What it leaves out is the selection: reading the index,
// matching and writing the answer. plugin_bench gives it imgseld's own
// answer for the example index, so a client pays for the same request and
// the same 2.5 KB answer, and the ratio it measures against the empty RPC is
// what that answer costs before imgseld does any work. Runs until SIGTERM.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "imgsel/v1/selector.grpc.pb.h"

namespace {

class FloorSelector final
    : public imgsel::v1::Selector::WithRawCallbackMethod_Select<imgsel::v1::Selector::Service> {
 public:
  explicit FloorSelector(std::string answer) : answer_(std::move(answer)) {}

  grpc::ServerUnaryReactor* Select(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request_bytes,
                                   grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    imgsel::v1::SelectRequest request;
    grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_bytes));
    if (!request.ParseFromZeroCopyStream(&reader)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a SelectRequest"));
      return reactor;
    }
    grpc::Slice slice(answer_);
    *response = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const std::string answer_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SOCKET ANSWER_FILE\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream answer;
  answer << in.rdbuf();
  if (!in || answer.str().empty()) {
    fprintf(stderr, "%s: cannot read the answer\n", argv[2]);
    return 1;
  }
  // SIGTERM ends the wait below; blocked here so no thread takes it first.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  FloorSelector selector(answer.str());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(std::string("unix:") + argv[1], grpc::InsecureServerCredentials());
  builder.RegisterService(&selector);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    fprintf(stderr, "cannot listen on %s\n", argv[1]);
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  int sig = 0;
  sigwait(&term, &sig);
  server->Shutdown();
  return 0;
}
