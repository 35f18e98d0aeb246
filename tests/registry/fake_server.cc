#include "tests/registry/fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace imgsel::registry::testing {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 307:
      return "Temporary Redirect";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

}  // namespace

FakeServer::FakeServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 256) != 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Serve(); });
}

FakeServer::~FakeServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

std::string FakeServer::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::vector<FakeRequest> FakeServer::requests() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

void FakeServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    absl::MutexLock lock(&mu_);
    workers_.emplace_back([this, fd] { HandleConnection(fd); });
  }
}

void FakeServer::HandleConnection(int fd) {
  std::string data;
  char buf[8192];
  size_t header_end = std::string::npos;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto read_more = [&]() {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) return !stop_ && absl::Now() < deadline;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<size_t>(n));
    return true;
  };
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (!read_more()) {
      close(fd);
      return;
    }
  }
  FakeRequest req;
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() >= 2) {
    req.method = first[0];
    req.target = first[1];
  }
  size_t content_length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length") (void)absl::SimpleAtoi(value, &content_length);
    req.headers[name] = value;
  }
  while (data.size() < header_end + 4 + content_length) {
    if (!read_more()) break;
  }
  req.body = data.substr(header_end + 4, content_length);
  {
    absl::MutexLock lock(&mu_);
    log_.push_back(req);
  }
  FakeResponse resp = handler_(req);
  absl::Time until = absl::Now() + resp.delay;
  while (!stop_ && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
  std::string out = absl::StrCat("HTTP/1.1 ", resp.status, " ", Reason(resp.status), "\r\n");
  bool has_length = false;
  for (const auto& [k, v] : resp.headers) {
    absl::StrAppend(&out, k, ": ", v, "\r\n");
    if (absl::AsciiStrToLower(k) == "content-length") has_length = true;
  }
  if (!has_length) absl::StrAppend(&out, "Content-Length: ", resp.body.size(), "\r\n");
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  if (req.method != "HEAD") {
    absl::StrAppend(&out, resp.send_only == std::string::npos
                              ? resp.body
                              : resp.body.substr(0, resp.send_only));
  }
  SendAll(fd, out);
  shutdown(fd, SHUT_WR);
  close(fd);
}

}  // namespace imgsel::registry::testing
