#include "tests/integration/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace imgsel::integration {
namespace {

// No wait of the proxy outlasts this, even when nobody stops it.
constexpr int kMaxWaitMs = 30'000;
constexpr size_t kMaxHeadBytes = 64 << 10;
constexpr size_t kMaxRewrittenBody = 8 << 20;

// The head with every Connection header replaced by `Connection: close`.
std::string WithConnectionClose(absl::string_view head) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (line.empty()) continue;
    if (absl::StartsWithIgnoreCase(line, "connection:")) continue;
    absl::StrAppend(&out, line, "\r\n");
  }
  absl::StrAppend(&out, "Connection: close\r\n\r\n");
  return out;
}

std::optional<size_t> ContentLength(absl::string_view head) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::ConsumePrefix(&line, "Content-Length:") ||
        absl::ConsumePrefix(&line, "content-length:")) {
      size_t n = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n)) return n;
    }
  }
  return std::nullopt;
}

std::string Canned(absl::string_view status, absl::string_view extra_headers,
                   absl::string_view body) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\n", extra_headers,
                      "Content-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", body);
}

std::string RegistryError(absl::string_view code, absl::string_view message) {
  return absl::StrCat("{\"errors\":[{\"code\":\"", code, "\",\"message\":\"", message, "\"}]}");
}

}  // namespace

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kPass:
      return "pass";
    case Fault::kStallAfterHeaders:
      return "stall after headers";
    case Fault::kReset:
      return "reset";
    case Fault::kServerError:
      return "500";
    case Fault::kTooManyRequests:
      return "429";
    case Fault::kSilentRealm:
      return "401, silent realm";
    case Fault::kWrongDigest:
      return "wrong digest";
    case Fault::kOversize:
      return "oversize";
    case Fault::kRedirect:
      return "307";
    case Fault::kEndlessListing:
      return "endless listing";
  }
  return "?";
}

std::unique_ptr<FaultProxy> FaultProxy::Start(int upstream_port, std::vector<FaultRule> rules,
                                              std::string* why) {
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->upstream_port_ = upstream_port;
  p->rules_ = std::move(rules);
  {
    absl::MutexLock lock(&p->mu_);
    p->applied_.assign(p->rules_.size(), 0);
  }
  p->silent_fd_ = ListenOnLoopback(64, &p->silent_port_);
  p->server_ = LoopbackServer::Listen();
  if (p->silent_fd_ < 0 || p->server_ == nullptr) {
    *why = "fault proxy: cannot listen on 127.0.0.1";
    return nullptr;
  }
  p->stop_fd_ = p->server_->stop_fd();
  p->server_->Run([raw = p.get()](int client) { raw->Serve(client); });
  return p;
}

FaultProxy::~FaultProxy() {
  if (server_ != nullptr) server_->Stop();  // before what Serve reads goes
  if (silent_fd_ >= 0) close(silent_fd_);
}

std::vector<FaultProxy::Request> FaultProxy::requests() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

const FaultRule* FaultProxy::RuleFor(const std::string& path) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!absl::StrContains(path, rules_[i].path_contains)) continue;
    if (rules_[i].times >= 0 && applied_[i] >= rules_[i].times) return nullptr;
    ++applied_[i];
    return &rules_[i];
  }
  return nullptr;
}

bool FaultProxy::Send(int fd, const char* data, size_t n) {
  while (n > 0) {
    pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, kMaxWaitMs) <= 0 || fds[1].revents != 0) return false;
    if ((fds[0].revents & (POLLERR | POLLHUP)) != 0) return false;
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

namespace {

// Reads from `fd` into *buffer until it holds "\r\n\r\n" (the head is then
// split off into *head), the peer closes, `stop_fd` is readable or the wait
// runs out. Bounded by kMaxHeadBytes.
bool ReadHead(int fd, int stop_fd, std::string* buffer, std::string* head) {
  char buf[16 << 10];
  while (true) {
    if (size_t end = buffer->find("\r\n\r\n"); end != std::string::npos) {
      *head = buffer->substr(0, end + 4);
      buffer->erase(0, end + 4);
      return true;
    }
    if (buffer->size() > kMaxHeadBytes) return false;
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, kMaxWaitMs) <= 0 || fds[1].revents != 0) return false;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buffer->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

void FaultProxy::Serve(int client) {
  std::string buffer;
  std::string head;
  if (!ReadHead(client, stop_fd_, &buffer, &head)) {
    close(client);
    return;
  }
  const std::string line = head.substr(0, head.find("\r\n"));
  const std::vector<std::string> parts = absl::StrSplit(line, ' ');
  const std::string path = parts.size() > 1 ? parts[1] : "";
  const FaultRule* rule = RuleFor(path);
  const Fault fault = rule == nullptr ? Fault::kPass : rule->fault;
  {
    absl::MutexLock lock(&mu_);
    log_.push_back({absl::Now(), line.substr(0, line.rfind(" HTTP/")), fault});
  }
  // A registry's pulls carry no body; what came after the head is dropped.
  const std::string request_head = WithConnectionClose(head);
  switch (fault) {
    case Fault::kPass:
      PassThrough(client, request_head);
      break;
    case Fault::kStallAfterHeaders:
      StallAfterHeaders(client, request_head);
      break;
    case Fault::kReset: {
      linger hard{1, 0};
      setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
      break;
    }
    case Fault::kServerError:
      Send(client, Canned("500 Internal Server Error", "",
                          RegistryError("UNKNOWN", "injected server error")));
      break;
    case Fault::kTooManyRequests:
      Send(client, Canned("429 Too Many Requests",
                          absl::StrCat("Retry-After: ", rule->retry_after_seconds, "\r\n"),
                          RegistryError("TOOMANYREQUESTS", "injected rate limit")));
      break;
    case Fault::kSilentRealm:
      Send(client, Canned("401 Unauthorized",
                          absl::StrCat("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:",
                                       silent_port_, "/token\",service=\"faults\"\r\n"),
                          RegistryError("UNAUTHORIZED", "authentication required")));
      break;
    case Fault::kWrongDigest:
      WrongDigest(client, request_head, *rule);
      break;
    case Fault::kOversize:
      Oversize(client, rule->oversize_bytes);
      break;
    case Fault::kRedirect:
      Send(client, Canned("307 Temporary Redirect",
                          absl::StrCat("Location: http://", rule->redirect_to, path, "\r\n"), ""));
      break;
    case Fault::kEndlessListing:
      EndlessListing(client);
      break;
  }
  close(client);
}

int FaultProxy::AskUpstream(const std::string& request_head, std::string* response_head,
                            std::string* body_start) {
  int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (upstream < 0 || connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      !Send(upstream, request_head)) {
    if (upstream >= 0) close(upstream);
    return -1;
  }
  std::string head;
  body_start->clear();
  if (!ReadHead(upstream, stop_fd_, body_start, &head)) {
    close(upstream);
    return -1;
  }
  *response_head = WithConnectionClose(head);
  return upstream;
}

void FaultProxy::PassThrough(int client, const std::string& request_head) {
  std::string head;
  std::string body;
  const int upstream = AskUpstream(request_head, &head, &body);
  if (upstream < 0) return;
  if (Send(client, head) && Send(client, body)) {
    char buf[64 << 10];
    while (true) {
      pollfd fds[2] = {{upstream, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(fds, 2, kMaxWaitMs) <= 0 || fds[1].revents != 0) break;
      ssize_t n = recv(upstream, buf, sizeof(buf), 0);
      if (n <= 0 || !Send(client, buf, static_cast<size_t>(n))) break;
    }
  }
  close(upstream);
}

void FaultProxy::Hold(int client) {
  char buf[4096];
  while (true) {
    pollfd fds[2] = {{client, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, kMaxWaitMs) <= 0 || fds[1].revents != 0) return;
    if (recv(client, buf, sizeof(buf), 0) <= 0) return;
  }
}

void FaultProxy::StallAfterHeaders(int client, const std::string& request_head) {
  std::string head;
  std::string body;
  const int upstream = AskUpstream(request_head, &head, &body);
  if (upstream < 0) return;
  close(upstream);
  if (Send(client, head)) Hold(client);
}

void FaultProxy::WrongDigest(int client, const std::string& request_head, const FaultRule& rule) {
  std::string head;
  std::string body;
  const int upstream = AskUpstream(request_head, &head, &body);
  if (upstream < 0) return;
  const std::optional<size_t> length = ContentLength(head);
  char buf[64 << 10];
  while (body.size() < kMaxRewrittenBody && (!length.has_value() || body.size() < *length)) {
    pollfd fds[2] = {{upstream, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, kMaxWaitMs) <= 0 || fds[1].revents != 0) break;
    ssize_t n = recv(upstream, buf, sizeof(buf), 0);
    if (n <= 0) break;
    body.append(buf, static_cast<size_t>(n));
  }
  close(upstream);
  if (!body.empty()) {
    if (size_t at = body.find(rule.replace_from);
        !rule.replace_from.empty() && at != std::string::npos &&
        rule.replace_to.size() == rule.replace_from.size()) {
      body.replace(at, rule.replace_from.size(), rule.replace_to);
    } else {
      body.back() = body.back() == ' ' ? '\n' : ' ';
    }
  }
  if (Send(client, head)) Send(client, body);
}

void FaultProxy::Oversize(int client, size_t bytes) {
  if (!Send(client, absl::StrCat("HTTP/1.1 200 OK\r\n"
                                 "Content-Type: application/vnd.oci.image.index.v1+json\r\n"
                                 "Content-Length: ",
                                 bytes, "\r\nConnection: close\r\n\r\n"))) {
    return;
  }
  const std::string spaces(64 << 10, ' ');
  for (size_t sent = 0; sent < bytes;) {
    const size_t n = std::min(spaces.size(), bytes - sent);
    if (!Send(client, spaces.data(), n)) return;
    sent += n;
  }
}

void FaultProxy::EndlessListing(int client) {
  auto chunk = [](absl::string_view data) {
    return absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
  };
  if (!Send(client, absl::StrCat("HTTP/1.1 200 OK\r\n"
                                 "Content-Type: application/vnd.oci.image.index.v1+json\r\n"
                                 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                                 chunk("{\"schemaVersion\":2,\"mediaType\":\"application/"
                                       "vnd.oci.image.index.v1+json\",\"manifests\":[")))) {
    return;
  }
  std::string many;
  for (int i = 0; i < 64; ++i) {
    absl::StrAppend(&many,
                    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                    "\"artifactType\":\"application/vnd.oci.image-compatibility.v1\","
                    "\"digest\":\"sha256:",
                    std::string(64, "0123456789abcdef"[i % 16]), "\",\"size\":2},");
  }
  const std::string piece = chunk(many);
  while (Send(client, piece)) {
  }
}

}  // namespace imgsel::integration
